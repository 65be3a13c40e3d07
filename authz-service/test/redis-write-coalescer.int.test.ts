import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uniqueRedisPrefix } from '@tollgate/devstack';
import { RateLimiter } from '../src/check/rate-limiter.js';
import { RedisWriteCoalescer } from '../src/stores/redis-write-coalescer.js';

const infra = inject('infra');
let redis: Redis;

beforeAll(async () => {
  redis = new Redis(infra.redisUrl);
  await redis.ping();
});
afterAll(() => redis?.disconnect());

/** Bytes handed to the client's socket but not yet to the OS (held while the socket is corked). */
const held = () => (redis.stream as unknown as { writableLength: number }).writableLength;
const nextTurn = () => new Promise((r) => setImmediate(r));
/** A callback of its own, as each gRPC call reaches its handler: no shared synchronous stretch. */
const inOwnCallback = <T>(fn: () => Promise<T>) => new Promise<T>((resolve, reject) => setTimeout(() => fn().then(resolve, reject), 0));

describe('coalescing the Redis writes of one event-loop turn', () => {
  it('writes the first command of a turn at once and the rest of the turn together right after', async () => {
    const limiter = new RateLimiter(redis, uniqueRedisPrefix(infra, 'co'), { writes: new RedisWriteCoalescer(redis) });
    const limits = { perMinute: 100, perDay: null };
    await limiter.hit('key_warm', limits); // the script is loaded, so no NOSCRIPT retry below
    await nextTurn();

    const first = limiter.hit('key_a', limits);
    expect(held()).toBe(0); // a lone Check waits for nothing
    const second = limiter.hit('key_b', limits);
    const third = limiter.hit('key_c', limits);
    expect(held()).toBeGreaterThan(0); // the same turn's later commands wait for the turn's end…
    await nextTurn();
    expect(held()).toBe(0); // …and then leave together
    const results = await Promise.all([first, second, third]);
    expect(results.map((r) => [r.allowed, r.minute?.remaining])).toEqual([
      [true, 99],
      [true, 99],
      [true, 99],
    ]);
  });

  it('keeps limits exact while commands are held, turn after turn', async () => {
    const limiter = new RateLimiter(redis, uniqueRedisPrefix(infra, 'co'), { writes: new RedisWriteCoalescer(redis) });
    const hit = () => limiter.hit('key_exact', { perMinute: 50, perDay: null });
    await hit();
    await nextTurn();
    // 80 in this turn (all but the first held), 40 more each in a callback of its own.
    const sameTurn = Array.from({ length: 80 }, hit);
    expect(held()).toBeGreaterThan(0);
    const later = Array.from({ length: 40 }, () => inOwnCallback(hit));
    const results = await Promise.all([...sameTurn, ...later]);
    expect(results.filter((r) => r.allowed)).toHaveLength(49);
    expect(results.filter((r) => !r.allowed).every((r) => r.retryAfterMs > 0)).toBe(true);
  });
});
