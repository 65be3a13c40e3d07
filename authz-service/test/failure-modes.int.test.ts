import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { TestStack } from '@tollgate/devstack';
import { generateKey } from '../src/domain/key-format.js';
import { createKey, headersOf, httpStatusOf, metricValue, sleep, stackAuthz, stackCheck, stackEnv, type TestEnv } from './helpers.js';

// What happens when a dependency fails, with real servers that really go away.
const infra = inject('infra');
const stack = new TestStack();
afterAll(() => stack.stop());

async function serviceWith(env: TestEnv, overrides: Record<string, string>) {
  const s = await stackAuthz(stack, env, overrides);
  return { s, check: stackCheck(stack, s) };
}

const bearer = (k: string) => ({ headers: { authorization: `Bearer ${k}` } });

describe('Redis down', () => {
  it('fail-open (the default) allows, counts the failure, and keeps rejecting bad keys', async () => {
    const redis = await stack.redis();
    const env = { ...(await stackEnv(stack, infra, 'redis_open')), redisUrl: redis.url };
    const { s, check } = await serviceWith(env, {});
    const { plaintext } = await createKey(s, { rateLimitPerMinute: 5 });
    expect(httpStatusOf(await check(bearer(plaintext)))).toBe(200);
    await redis.process.stop();
    const res = await check(bearer(plaintext));
    expect(httpStatusOf(res)).toBe(200);
    expect(await metricValue(s, 'tollgate_authz_redis_failures_total')).toBeGreaterThanOrEqual(1);
    expect(httpStatusOf(await check(bearer(generateKey('sk').plaintext)))).toBe(401);
  });

  it('fail-closed answers 503 with a JSON body', async () => {
    const redis = await stack.redis();
    const env = { ...(await stackEnv(stack, infra, 'redis_closed')), redisUrl: redis.url };
    const { s, check } = await serviceWith(env, { RATE_LIMIT_FAILURE_MODE: 'closed' });
    const { plaintext } = await createKey(s, { rateLimitPerMinute: 5 });
    expect(httpStatusOf(await check(bearer(plaintext)))).toBe(200);
    await redis.process.stop();
    const res = await check(bearer(plaintext));
    expect(httpStatusOf(res)).toBe(503);
    expect(JSON.parse(res.deniedResponse!.body)).toMatchObject({ error: 'unavailable' });
    expect(headersOf(res.deniedResponse?.headers)['content-type']).toBe('application/json');
  });
});

describe('Postgres down', () => {
  it('known keys keep working from the cache (stale, within KEY_CACHE_MAX_STALE_MS); unknown keys get 503, not 401', async () => {
    const env = await stackEnv(stack, infra, 'pg_down');
    const { s, check } = await serviceWith(env, { KEY_CACHE_TTL_MS: '100', KEY_CACHE_MAX_STALE_MS: '1500' });
    const { plaintext } = await createKey(s);
    expect(httpStatusOf(await check(bearer(plaintext)))).toBe(200);

    // Make the database refuse connections and drop the ones the service holds.
    const dbName = new URL(env.databaseUrl).pathname.slice(1);
    const admin = new pg.Client({ connectionString: infra.pgAdminUrl });
    await admin.connect();
    await admin.query(`alter database ${dbName} allow_connections false`);
    await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [dbName]);
    try {
      await sleep(200); // past the cache TTL: the entry is stale and a refresh will fail
      expect(httpStatusOf(await check(bearer(plaintext)))).toBe(200);
      const unknown = await check(bearer(generateKey('sk').plaintext));
      expect(httpStatusOf(unknown)).toBe(503);
      expect(JSON.parse(unknown.deniedResponse!.body).error).toBe('unavailable');
      expect(await metricValue(s, 'tollgate_authz_postgres_errors_total')).toBeGreaterThanOrEqual(1);
      // …but only within KEY_CACHE_MAX_STALE_MS past the TTL: then the key store is unavailable.
      await sleep(1500);
      const late = await check(bearer(plaintext));
      expect(httpStatusOf(late)).toBe(503);
      expect(JSON.parse(late.deniedResponse!.body).error).toBe('unavailable');
    } finally {
      await admin.query(`alter database ${dbName} allow_connections true`);
      await admin.end();
    }
    // Recovery: new keys work again once Postgres is back.
    await sleep(50);
    const fresh = await createKey(s);
    expect(httpStatusOf(await check(bearer(fresh.plaintext)))).toBe(200);
  });
});

describe('unknown-key flood', () => {
  it('distinct unknown keys do not evict a known key: it is still answered without a Postgres lookup', async () => {
    const env = await stackEnv(stack, infra, 'neg_lru');
    // The smallest caches allowed, so a few hundred unknown keys overflow them.
    const { s, check } = await serviceWith(env, { KEY_CACHE_MAX_ENTRIES: '100', NEGATIVE_CACHE_MAX_ENTRIES: '100' });
    const { plaintext } = await createKey(s);
    expect(httpStatusOf(await check(bearer(plaintext)))).toBe(200);
    for (let i = 0; i < 300; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, () => check(bearer(generateKey('sk').plaintext))));
      expect(batch.map(httpStatusOf)).toEqual(Array(50).fill(401));
    }
    const lookups = await metricValue(s, 'tollgate_authz_key_lookups_total');
    expect(httpStatusOf(await check(bearer(plaintext)))).toBe(200);
    expect(await metricValue(s, 'tollgate_authz_key_lookups_total')).toBe(lookups);
  });
});

describe('hot path cost', () => {
  it('makes exactly one Redis call per Check on a warm cache (Redis command statistics)', async () => {
    const redis = await stack.redis();
    const env = { ...(await stackEnv(stack, infra, 'one_call')), redisUrl: redis.url };
    const { s, check } = await serviceWith(env, {});
    const { plaintext } = await createKey(s, { rateLimitPerMinute: 100_000, rateLimitPerDay: 1_000_000 });
    await check(bearer(plaintext)); // warm the cache and the script
    const probe = new Redis(redis.url);
    stack.defer('Redis probe', () => probe.disconnect());
    await probe.config('RESETSTAT');
    const N = 200;
    for (let i = 0; i < N; i++) expect(httpStatusOf(await check(bearer(plaintext)))).toBe(200);
    const stats = await probe.info('commandstats');
    const calls = Object.fromEntries([...stats.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)].map((m) => [m[1], Number(m[2])]));
    // Redis counts the commands a script runs as well (the rate-limit script's, listed in
    // check/rate-limit-script.ts); what a client sent is the script call. HMGET is also the
    // replica's key-event poll (every KEY_EVENTS_POLL_MS, whatever the traffic).
    const insideScript = ['time', 'hmget', 'hset', 'hkeys', 'hdel', 'pexpire', 'pexpireat'];
    const fromClients = Object.entries(calls).filter(([cmd]) => !['info', 'config|resetstat', ...insideScript].includes(cmd));
    expect(Object.fromEntries(fromClients)).toEqual({ evalsha: N });
  });
});
