import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestGateway, type TestGateway } from './api-helpers.js';
import { sleep } from './helpers.js';

// Management calls change what Envoy lets through: revoke, rotate with grace, expiry, scopes.
// The whole service (Check + management API, sharing caches and events) behind a real Envoy.
const infra = inject('infra');
let stack: TestGateway;

beforeAll(async () => {
  stack = await startTestGateway(infra, 'mgmt_envoy');
});

afterAll(async () => {
  await stack?.stop();
});

const manage = (method: string, path: string, body?: unknown) => stack.manage(method, path, body);

const gateway = (path: string, key: string, method = 'GET') =>
  fetch(`${stack.envoy.url}${path}`, { method, headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);

/** Polls until the gateway answers `status` for the key; returns how long that took. */
async function untilStatus(key: string, status: number, path = '/hello', method = 'GET', withinMs = 1000): Promise<number> {
  const start = Date.now();
  let last = 0;
  while (Date.now() - start < withinMs + 500) {
    last = await gateway(path, key, method);
    if (last === status) return Date.now() - start;
    await sleep(25);
  }
  throw new Error(`gateway still answers ${last}, not ${status}, after ${Date.now() - start} ms`);
}

const newKey = (extra: Record<string, unknown> = {}) =>
  manage('POST', '/api/keys', { user_id: 'envoy-user', name: 'through envoy', rate_limit_per_minute: 1000, rate_limit_per_day: 100000, ...extra });

describe('management changes through Envoy', () => {
  it('revoke: the key is refused within a second (its cached copy dropped)', async () => {
    const k = await newKey();
    expect(await gateway('/hello', k.key)).toBe(200);
    expect(await gateway('/hello', k.key)).toBe(200); // now cached
    await manage('POST', `/api/keys/${k.id}/revoke`, { reason: 'test' });
    expect(await untilStatus(k.key, 401)).toBeLessThan(1000);
  });

  it('rotate with grace: old and new secrets both work during the grace period', async () => {
    const k = await newKey();
    expect(await gateway('/hello', k.key)).toBe(200);
    const rotated = await manage('POST', `/api/keys/${k.id}/rotate`, { grace_seconds: 60 });
    expect(await gateway('/hello', rotated.key)).toBe(200);
    expect(await gateway('/hello', k.key)).toBe(200);
    // The database stops matching the old secret once the grace ends (key-store findByHash).
    await stack.authz.deps.pool.query(`update api_keys set previous_key_expires_at = now() where id = $1`, [k.id]);
    expect(await stack.authz.deps.keyStore.findByHash(stack.authz.deps.hasher.candidates(k.key))).toBeNull();
  });

  // A cached match by the previous secret must not outlive the grace period (the Checker
  // compares previousKeyExpiresAt per request).
  it('rotate with grace: the old secret is refused within a second of the grace end', async () => {
    const k = await newKey();
    expect(await gateway('/hello', k.key)).toBe(200);
    const rotated = await manage('POST', `/api/keys/${k.id}/rotate`, { grace_seconds: 2 });
    expect(await gateway('/hello', k.key)).toBe(200);
    await sleep(2100);
    expect(await untilStatus(k.key, 401)).toBeLessThan(1000);
    expect(await gateway('/hello', rotated.key)).toBe(200);
  });

  it('rotate without grace: the old secret dies within a second', async () => {
    const k = await newKey();
    expect(await gateway('/hello', k.key)).toBe(200);
    const rotated = await manage('POST', `/api/keys/${k.id}/rotate`, { grace_seconds: 0 });
    expect(await untilStatus(k.key, 401)).toBeLessThan(1000);
    expect(await gateway('/hello', rotated.key)).toBe(200);
  });

  it('expiry: a key expires on time, and extend brings it back', async () => {
    const k = await newKey();
    const soon = new Date(Date.now() + 1500).toISOString();
    await manage('POST', `/api/keys/${k.id}/extend`, { expires_at: soon });
    expect(await gateway('/hello', k.key)).toBe(200);
    await sleep(1600);
    expect(await untilStatus(k.key, 401)).toBeLessThan(1000);
    await manage('POST', `/api/keys/${k.id}/extend`, { days: 1 });
    expect(await untilStatus(k.key, 200)).toBeLessThan(1000);
  });

  it('scope change: a read-only key gains write within a second, and loses it again', async () => {
    const k = await newKey({ permission_set: 'read_only' });
    expect(await gateway('/hello', k.key)).toBe(200);
    expect(await gateway('/echo', k.key, 'POST')).toBe(403);
    await manage('PATCH', `/api/keys/${k.id}`, { scopes: ['write'] });
    expect(await untilStatus(k.key, 200, '/echo', 'POST')).toBeLessThan(1000);
    await manage('PATCH', `/api/keys/${k.id}`, { scopes: [] });
    expect(await untilStatus(k.key, 403, '/echo', 'POST')).toBeLessThan(1000);
  });

  it('suspend and delete: refused within a second', async () => {
    const a = await newKey();
    const b = await newKey();
    expect(await gateway('/hello', a.key)).toBe(200);
    expect(await gateway('/hello', b.key)).toBe(200);
    await manage('PATCH', `/api/keys/${a.id}`, { is_active: false });
    await manage('DELETE', `/api/keys/${b.id}`);
    expect(await untilStatus(a.key, 401)).toBeLessThan(1000);
    expect(await untilStatus(b.key, 401)).toBeLessThan(1000);
  });
});
