import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TestStack } from '@tollgate/devstack';
import { createKey, httpStatusOf, sleep, stackAuthz, stackCheck, stackEnv, type CheckFn, type TestAuthz } from './helpers.js';

// Two authz-service replicas sharing one Postgres and one Redis, as in production.
const infra = inject('infra');
let a: TestAuthz;
let b: TestAuthz;
let checkA: CheckFn;
let checkB: CheckFn;
const stack = new TestStack();

beforeAll(async () => {
  const env = await stackEnv(stack, infra, 'replicas');
  // A long cache TTL, so only the invalidation events can explain a change being seen.
  a = await stackAuthz(stack, env, { KEY_CACHE_TTL_MS: '600000' });
  b = await stackAuthz(stack, env, { KEY_CACHE_TTL_MS: '600000' });
  checkA = stackCheck(stack, a);
  checkB = stackCheck(stack, b);
});

afterAll(() => stack.stop());

const bearer = (k: string) => ({ headers: { authorization: `Bearer ${k}` } });

async function msUntil401(check: CheckFn, plaintext: string, limitMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < limitMs) {
    if (httpStatusOf(await check(bearer(plaintext))) === 401) return Date.now() - start;
    await sleep(10);
  }
  return Infinity;
}

describe('two replicas', () => {
  it('a revocation made through one replica reaches both caches within one second', async () => {
    const { key, plaintext } = await createKey(a);
    // Warm both caches.
    expect(httpStatusOf(await checkA(bearer(plaintext)))).toBe(200);
    expect(httpStatusOf(await checkB(bearer(plaintext)))).toBe(200);
    await a.deps.keyStore.revoke(key.id, 'admin', 'test');
    await a.deps.keyEvents.keyChanged(key.id);
    const [ta, tb] = await Promise.all([msUntil401(checkA, plaintext, 1000), msUntil401(checkB, plaintext, 1000)]);
    expect(ta).toBeLessThan(1000);
    expect(tb).toBeLessThan(1000);
  });

  it('a deletion reaches both replicas too', async () => {
    const { key, plaintext } = await createKey(a);
    await checkA(bearer(plaintext));
    await checkB(bearer(plaintext));
    await b.deps.keyStore.delete(key.id);
    await b.deps.keyEvents.keyChanged(key.id);
    expect(await msUntil401(checkA, plaintext, 1000)).toBeLessThan(1000);
    expect(await msUntil401(checkB, plaintext, 1000)).toBeLessThan(1000);
  });

  it('allows exactly L of N > L concurrent requests spread over both replicas', async () => {
    const L = 25;
    const N = 80;
    const { plaintext } = await createKey(a, { rateLimitPerMinute: L });
    const results = await Promise.all(Array.from({ length: N }, (_, i) => (i % 2 ? checkA : checkB)(bearer(plaintext)).then(httpStatusOf)));
    expect(results.filter((s) => s === 200)).toHaveLength(L);
    expect(results.filter((s) => s === 429)).toHaveLength(N - L);
  });
});
