import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TestStack } from '@tollgate/devstack';
import { RateLimiter } from '../src/check/rate-limiter.js';
import { createKey, headersOf, httpStatusOf, metadataOf, stackAuthz, stackCheck, stackEnv, startEnvoyFront, type CheckFn, type TestAuthz } from './helpers.js';

// Monthly quotas: two authz-service replicas sharing one Postgres and one Redis, and a real
// Envoy in front of one of them for what the client sees.
const infra = inject('infra');
let a: TestAuthz;
let b: TestAuthz;
let checkA: CheckFn;
let checkB: CheckFn;
let envoyUrl: string;
const stack = new TestStack();
const COSTS = JSON.stringify([{ prefix: '/echo/reports', cost: 5 }]);

beforeAll(async () => {
  const env = await stackEnv(stack, infra, 'quotas');
  a = await stackAuthz(stack, env, { ROUTE_COSTS: COSTS });
  b = await stackAuthz(stack, env, { ROUTE_COSTS: COSTS });
  checkA = stackCheck(stack, a);
  checkB = stackCheck(stack, b);
  envoyUrl = (await startEnvoyFront(stack, a.grpcPort)).url;
});

afterAll(() => stack.stop());

const bearer = (k: string, path = '/hello') => ({ path, headers: { authorization: `Bearer ${k}` } });

function secondsToNextMonth(): number {
  const now = new Date();
  return (Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1) - now.getTime()) / 1000;
}

describe('monthly quota', () => {
  it('allows exactly N of many concurrent requests spread over two replicas, then 429 quota_exceeded', async () => {
    const N = 30;
    const { plaintext } = await createKey(a, { monthlyQuota: N });
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? checkA : checkB)(bearer(plaintext))));
    const statuses = replies.map(httpStatusOf);
    expect(statuses.filter((s) => s === 200)).toHaveLength(N);
    expect(statuses.filter((s) => s === 429)).toHaveLength(100 - N);

    const res = await fetch(`${envoyUrl}/hello`, { headers: { authorization: `Bearer ${plaintext}` } });
    expect(res.status).toBe(429);
    expect(await res.json()).toMatchObject({ error: 'quota_exceeded' });
    const retryAfter = Number(res.headers.get('retry-after'));
    expect(Math.abs(retryAfter - secondsToNextMonth())).toBeLessThanOrEqual(5);
    expect(res.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(res.headers.get('ratelimit-policy')).toMatch(new RegExp(`^"quota";q=${N};w=\\d+$`));
  });

  it('shows the remaining quota in the headers of an allowed request, next to the rate windows', async () => {
    const { plaintext } = await createKey(a, { monthlyQuota: 10, rateLimitPerMinute: 100 });
    const res = await fetch(`${envoyUrl}/hello`, { headers: { authorization: `Bearer ${plaintext}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('ratelimit-policy')).toMatch(/^"minute";q=100;w=60, "quota";q=10;w=\d+$/);
    expect(res.headers.get('ratelimit')).toMatch(/^"quota";r=9;t=\d+$/);
  });

  it('a ROUTE_COSTS weight counts against the quota and is published for billing', async () => {
    const { key, plaintext } = await createKey(a, { monthlyQuota: 12 });
    const costly = await checkB(bearer(plaintext, '/echo/reports/1'));
    expect(httpStatusOf(costly)).toBe(200);
    expect(metadataOf(costly).cost).toBe('5');
    expect(headersOf(costly.okResponse?.responseHeadersToAdd).ratelimit).toMatch(/^"quota";r=7;/);
    // Matched like every restricting prefix: another ASCII casing is not cheaper.
    expect(metadataOf(await checkA(bearer(plaintext, '/ECHO/Reports/2'))).cost).toBe('5');
    // 10 used: a cost-5 request no longer fits, a cost-1 one does, twice.
    expect(httpStatusOf(await checkA(bearer(plaintext, '/echo/reports/3')))).toBe(429);
    const cheap = await checkA(bearer(plaintext, '/hello'));
    expect(httpStatusOf(cheap)).toBe(200);
    expect(metadataOf(cheap).cost).toBeUndefined();
    expect(httpStatusOf(await checkB(bearer(plaintext)))).toBe(200);
    expect(httpStatusOf(await checkB(bearer(plaintext)))).toBe(429);
    expect(await new RateLimiter(a.deps.redis, a.deps.config.REDIS_KEY_PREFIX).quotaUsed(key.id)).toBe(12);
  });

  it('the counter expires after the month', async () => {
    const { key, plaintext } = await createKey(a, { monthlyQuota: 3 });
    expect(httpStatusOf(await checkA(bearer(plaintext)))).toBe(200);
    const ttlMs = await a.deps.redis.pttl(new RateLimiter(a.deps.redis, a.deps.config.REDIS_KEY_PREFIX).quotaKey(key.id));
    const day = 86_400_000;
    expect(Math.abs(ttlMs - (secondsToNextMonth() * 1000 + day))).toBeLessThan(5_000);
  });
});
