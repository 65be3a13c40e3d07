import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { generateKey } from '../src/domain/key-format.js';
import { TestStack } from '@tollgate/devstack';
import { createKey, metricValue, startAuthzStack, type EnvoyFront, type TestAuthz } from './helpers.js';

// Unauthenticated refusals limited per client address, through the real Envoy: its
// CheckRequest carries the connection's peer (127.0.0.1 here) as the source address.
const infra = inject('infra');
const PER_MINUTE = 5;
let authz: TestAuthz;
let front: EnvoyFront;
const stack = new TestStack();

beforeAll(async () => {
  ({ authz, front } = await startAuthzStack(stack, infra, 'refusals', {
    config: { UNAUTHENTICATED_REFUSALS_PER_MINUTE_PER_ADDRESS: String(PER_MINUTE) },
    envoy: true,
  }));
});

afterAll(() => stack.stop());

const get = (headers: Record<string, string>) => fetch(`${front.url}/hello`, { headers });
const minted = () => ({ authorization: `Bearer ${generateKey(authz.deps.config.KEY_PREFIX).plaintext}` });
const lookups = () => metricValue(authz, 'tollgate_authz_key_lookups_total');

describe('refusal limit per client address', () => {
  it('after N unknown keys the address gets 429 without a Postgres lookup; a key in use still passes', async () => {
    const { plaintext } = await createKey(authz, { userId: 'refusal-user' });
    expect((await get({ authorization: `Bearer ${plaintext}` })).status).toBe(200);

    const before = await lookups();
    for (let i = 0; i < PER_MINUTE; i++) {
      const res = await get(minted());
      expect(res.status).toBe(401);
      expect((await res.json()).error).toBe('invalid_api_key');
    }
    expect((await lookups()) - before).toBe(PER_MINUTE);

    const limited = await get(minted());
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toBe('application/json');
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60 / PER_MINUTE);
    expect(await limited.json()).toMatchObject({ error: 'too_many_failed_attempts' });
    // X-Forwarded-For does not make it another address (use_remote_address: true).
    expect((await get({ ...minted(), 'x-forwarded-for': '203.0.113.9' })).status).toBe(429);
    // Every other unauthenticated refusal is limited too.
    expect((await get({})).status).toBe(429);
    expect((await get({ authorization: 'Bearer not-a-key' })).status).toBe(429);
    expect((await lookups()) - before).toBe(PER_MINUTE);

    // The key this replica has cached is answered as before.
    const valid = await get({ authorization: `Bearer ${plaintext}` });
    expect(valid.status).toBe(200);
    expect(await metricValue(authz, 'tollgate_authz_checks_total', { outcome: 'refusals_limited' })).toBe(4);
  });
});
