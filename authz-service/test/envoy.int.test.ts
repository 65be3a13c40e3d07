import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TestStack, type RunningEnvoy } from '@tollgate/devstack';
import { createKey, startAuthzStack, type TestAuthz } from './helpers.js';

// The gateway as clients see it: real Envoy on a loopback port, ext_authz to authz-service,
// routing to backend-hello.
const infra = inject('infra');
let authz: TestAuthz;
let envoy: RunningEnvoy;
const stack = new TestStack();

beforeAll(async () => {
  let front;
  ({ authz, front } = await startAuthzStack(stack, infra, 'envoy', { envoy: true }));
  envoy = front.envoy;
});

afterAll(() => stack.stop());

const get = (path: string, headers: Record<string, string> = {}, method = 'GET') => fetch(`${envoy.url}${path}`, { method, headers });

describe('through Envoy', () => {
  it('allows a valid key: upstream gets the identity, never the key; client gets rate-limit headers', async () => {
    const { key, plaintext } = await createKey(authz, { userId: 'user123', rateLimitPerMinute: 100 });
    const res = await get('/echo', { authorization: `Bearer ${plaintext}` });
    expect(res.status).toBe(200);
    const echoed = await res.json();
    expect(echoed.headers['x-user-id']).toBe('user123');
    expect(echoed.headers['x-api-key-id']).toBe(key.id);
    expect(echoed.headers['authorization']).toBeUndefined();
    expect(JSON.stringify(echoed)).not.toContain(plaintext);
    expect(res.headers.get('x-ratelimit-limit')).toBe('100');
    expect(res.headers.get('x-ratelimit-remaining')).toBe('99');
    expect(res.headers.get('ratelimit-policy')).toBe('"minute";q=100;w=60');

    const hello = await get('/hello', { 'x-api-key': plaintext });
    expect((await hello.json()).message).toBe('Hello, user123!');
  });

  it('replaces identity headers a client sends with the real ones, and drops X-API-Key', async () => {
    const { key, plaintext } = await createKey(authz, { userId: 'real-user' });
    const res = await get('/echo', { 'x-api-key': plaintext, 'x-user-id': 'admin', 'x-api-key-id': 'key_forged', 'x-api-key-scopes': '*' });
    const { headers } = await res.json();
    expect(headers['x-user-id']).toBe('real-user');
    expect(headers['x-api-key-id']).toBe(key.id);
    expect(headers['x-api-key']).toBeUndefined();
  });

  it('401 without a key: JSON body and WWW-Authenticate', async () => {
    const res = await get('/hello');
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="tollgate"');
    expect(await res.json()).toMatchObject({ error: 'missing_credential' });
  });

  it('401 for an invalid key', async () => {
    const res = await get('/hello', { authorization: 'Bearer sk_nope' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="tollgate", error="invalid_token"');
    expect((await res.json()).error).toBe('invalid_api_key');
  });

  it('403 when the key lacks the scope', async () => {
    const { plaintext } = await createKey(authz, { permissionSet: 'read_only' });
    const res = await get('/echo', { authorization: `Bearer ${plaintext}` }, 'POST');
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: 'insufficient_scope' });
  });

  it('429 past the limit, with Retry-After and rate-limit headers', async () => {
    const { plaintext } = await createKey(authz, { rateLimitPerMinute: 2 });
    const statuses = [];
    let last: Response | undefined;
    for (let i = 0; i < 3; i++) {
      last = await get('/hello', { authorization: `Bearer ${plaintext}` });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(last!.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(last!.headers.get('content-type')).toBe('application/json');
    expect((await last!.json()).error).toBe('rate_limited');
  });

  it('health endpoints pass without a key', async () => {
    expect((await get('/health')).status).toBe(200);
    expect((await get('/ping')).status).toBe(200);
  });

  it('answers 503, never lets a request through, when authz-service is down', async () => {
    const { plaintext } = await createKey(authz);
    await authz.stop();
    const res = await get('/hello', { authorization: `Bearer ${plaintext}` });
    expect(res.status).toBe(503);
    expect((await get('/hello')).status).toBe(503);
  });
});
