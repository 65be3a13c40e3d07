import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uniqueRedisPrefix } from '@tollgate/devstack';
import { RateLimiter } from '../src/check/rate-limiter.js';
import { sleep } from './helpers.js';

// The sliding window's boundary behaviour, shown with a 2-second "minute" so the test is quick.
const infra = inject('infra');
let redis: Redis;

beforeAll(() => {
  redis = new Redis(infra.redisUrl);
});
afterAll(() => redis?.disconnect());

async function waitForWindowPhase(windowMs: number, phaseFrom: number, phaseTo: number) {
  for (;;) {
    const [sec, usec] = (await redis.time()) as unknown as [string, string];
    const phase = (Number(sec) * 1000 + Math.floor(Number(usec) / 1000)) % windowMs;
    if (phase >= phaseFrom && phase < phaseTo) return;
    await sleep(5);
  }
}

describe('sliding-window rate limit', () => {
  it('does not let 2L through around a window boundary, as a fixed window would', async () => {
    const windowMs = 2000;
    const limiter = new RateLimiter(redis, uniqueRedisPrefix(infra, 'rl'), { windows: { minute: windowMs, day: 86_400_000 } });
    const L = 10;
    // Spend the whole limit late in one window…
    await waitForWindowPhase(windowMs, 1700, 1800);
    let allowedBefore = 0;
    for (let i = 0; i < L + 5; i++) if ((await limiter.hit('key_boundary', { perMinute: L, perDay: null })).allowed) allowedBefore++;
    expect(allowedBefore).toBe(L);
    // …then try again just after the boundary: a fixed window would allow L more at once.
    await waitForWindowPhase(windowMs, 50, 150);
    let allowedAfter = 0;
    for (let i = 0; i < L; i++) if ((await limiter.hit('key_boundary', { perMinute: L, perDay: null })).allowed) allowedAfter++;
    expect(allowedAfter).toBeLessThanOrEqual(1);
    // Later in the new window the previous window's weight has decayed and requests flow again.
    await waitForWindowPhase(windowMs, 1000, 1100);
    let allowedLater = 0;
    for (let i = 0; i < L; i++) if ((await limiter.hit('key_boundary', { perMinute: L, perDay: null })).allowed) allowedLater++;
    expect(allowedLater).toBeGreaterThanOrEqual(3);
    expect(allowedLater).toBeLessThanOrEqual(6);
  });

  it('gives a Retry-After after which a request is allowed', async () => {
    const limiter = new RateLimiter(redis, uniqueRedisPrefix(infra, 'rl'), { windows: { minute: 1000, day: 86_400_000 } });
    let denied;
    for (let i = 0; i < 6; i++) {
      const r = await limiter.hit('key_retry', { perMinute: 5, perDay: null });
      if (!r.allowed) denied = r;
    }
    expect(denied).toBeDefined();
    expect(denied!.retryAfterMs).toBeGreaterThan(0);
    expect(denied!.retryAfterMs).toBeLessThanOrEqual(2000);
    await sleep(denied!.retryAfterMs + 20);
    expect((await limiter.hit('key_retry', { perMinute: 5, perDay: null })).allowed).toBe(true);
  });

  it('keeps both windows of one key in one hash-tagged key (one Redis Cluster slot)', async () => {
    const prefix = uniqueRedisPrefix(infra, 'rl');
    const limiter = new RateLimiter(redis, prefix);
    await limiter.hit('key_slot', { perMinute: 5, perDay: 50 });
    const keys = await redis.keys(`${prefix}*`);
    expect(keys).toEqual([`${prefix}rl:{key_slot}`]);
    const fields = await redis.hkeys(keys[0]!);
    expect(fields.some((f) => f.startsWith('m:'))).toBe(true);
    expect(fields.some((f) => f.startsWith('d:'))).toBe(true);
  });

  it('removes old minute fields of a key with a day limit (its hash lives for two days)', async () => {
    const prefix = uniqueRedisPrefix(infra, 'rl');
    const limiter = new RateLimiter(redis, prefix, { windows: { minute: 100, day: 86_400_000 } });
    const limits = { perMinute: 1000, perDay: 100_000 };
    // A key used now and then: minutes apart, never two windows in a row.
    for (let i = 0; i < 5; i++) {
      expect((await limiter.hit('key_sparse', limits)).allowed).toBe(true);
      await sleep(350);
    }
    expect((await limiter.hit('key_sparse', limits)).allowed).toBe(true);
    const fields = await redis.hkeys(`${prefix}rl:{key_sparse}`);
    // The current minute and at most the previous one, and the day.
    expect(fields.filter((f) => f.startsWith('m:')).length).toBeLessThanOrEqual(2);
    expect(fields.filter((f) => f.startsWith('d:'))).toHaveLength(1);
  });

  it('removes the fields of a window the key no longer has a limit for', async () => {
    const prefix = uniqueRedisPrefix(infra, 'rl');
    const limiter = new RateLimiter(redis, prefix, { windows: { minute: 100, day: 400 } });
    await limiter.hit('key_dropped', { perMinute: 1000, perDay: 100_000 });
    await sleep(450); // a new "day" window
    await limiter.hit('key_dropped', { perMinute: null, perDay: 100_000 });
    const fields = await redis.hkeys(`${prefix}rl:{key_dropped}`);
    expect(fields.filter((f) => f.startsWith('m:'))).toEqual([]);
    expect(fields.filter((f) => f.startsWith('d:')).length).toBeGreaterThanOrEqual(1);
  });
});
