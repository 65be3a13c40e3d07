import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { corruptChecksum, generateKey } from '../src/domain/key-format.js';
import { TestStack } from '@tollgate/devstack';
import {
  createKey,
  headersOf,
  httpStatusOf,
  metadataOf,
  metricValue,
  stackCheck,
  startAuthzStack,
  type CheckFn,
  type TestAuthz,
  type TestEnv,
} from './helpers.js';
import type { AuthzService } from '../src/app.js';

// The Check decision through the real gRPC interface, against real Postgres and Redis.
const infra = inject('infra');
let env: TestEnv;
let service: TestAuthz;
let check: CheckFn;
const stack = new TestStack();

beforeAll(async () => {
  ({ env, authz: service } = await startAuthzStack(stack, infra, 'check', {
    config: { ROUTE_SCOPES: JSON.stringify([{ prefix: '/admin/', scope: 'admin' }]) },
  }));
  check = stackCheck(stack, service);
});

afterAll(() => stack.stop());

const bearer = (k: string) => ({ authorization: `Bearer ${k}` });

describe('allowed requests', () => {
  it('allows a valid key, sets identity headers, strips the credential, publishes metadata', async () => {
    const { key, plaintext } = await createKey(service, { userId: 'user123', stripeCustomerId: 'cus_123' });
    const res = await check({ headers: bearer(plaintext) });
    expect(httpStatusOf(res)).toBe(200);
    const upstream = headersOf(res.okResponse?.headers);
    expect(upstream['x-user-id']).toBe('user123');
    expect(upstream['x-api-key-id']).toBe(key.id);
    expect(upstream['x-api-key-scopes']).toBe('*');
    expect(res.okResponse?.headersToRemove).toEqual(expect.arrayContaining(['authorization', 'x-api-key']));
    expect(metadataOf(res)).toEqual({ credential: 'api_key', user_id: 'user123', key_id: key.id, stripe_customer_id: 'cus_123', decision: 'allow' });
    // Nothing in the response carries the key itself.
    expect(JSON.stringify(res)).not.toContain(plaintext);
  });

  it('accepts the key in X-API-Key too', async () => {
    const { plaintext } = await createKey(service);
    expect(httpStatusOf(await check({ headers: { 'x-api-key': plaintext } }))).toBe(200);
  });

  it('serves a known key from the cache without asking Postgres again', async () => {
    const { plaintext } = await createKey(service);
    await check({ headers: bearer(plaintext) });
    const missesBefore = await metricValue(service, 'tollgate_authz_key_cache_total', { result: 'miss' });
    const hitsBefore = await metricValue(service, 'tollgate_authz_key_cache_total', { result: 'hit' });
    for (let i = 0; i < 10; i++) expect(httpStatusOf(await check({ headers: bearer(plaintext) }))).toBe(200);
    expect(await metricValue(service, 'tollgate_authz_key_cache_total', { result: 'miss' })).toBe(missesBefore);
    expect(await metricValue(service, 'tollgate_authz_key_cache_total', { result: 'hit' })).toBe(hitsBefore + 10);
  });

  it('records last_used_at and usage count in batches', async () => {
    const { key, plaintext } = await createKey(service);
    for (let i = 0; i < 5; i++) await check({ headers: bearer(plaintext) });
    await service.usage.flush();
    const after = await service.deps.keyStore.getById(key.id);
    expect(after?.usageCount).toBe(5);
    expect(after?.lastUsedAt).toBeInstanceOf(Date);
  });
});

describe('401: missing, malformed, unknown, revoked, expired', () => {
  async function expect401(headers: Record<string, string>, error: string, invalidToken = true) {
    const res = await check({ headers });
    expect(httpStatusOf(res)).toBe(401);
    const h = headersOf(res.deniedResponse?.headers);
    expect(h['content-type']).toBe('application/json');
    expect(h['www-authenticate']).toBe(invalidToken ? 'Bearer realm="tollgate", error="invalid_token"' : 'Bearer realm="tollgate"');
    const body = JSON.parse(res.deniedResponse!.body);
    expect(body.error).toBe(error);
    expect(typeof body.message).toBe('string');
    return body;
  }

  it('missing credential', async () => {
    await expect401({}, 'missing_credential', false);
  });

  it('wrong auth scheme, or two different keys', async () => {
    await expect401({ authorization: 'Basic dXNlcjpwYXNz' }, 'invalid_credential');
    const a = generateKey('sk').plaintext;
    const b = generateKey('sk').plaintext;
    await expect401({ authorization: `Bearer ${a}`, 'x-api-key': b }, 'invalid_credential');
  });

  it('malformed key and bad checksum are refused before any lookup', async () => {
    const before = await metricValue(service, 'tollgate_authz_key_cache_total');
    await expect401(bearer('not-a-key'), 'invalid_api_key');
    await expect401(bearer(corruptChecksum(generateKey('sk').plaintext)), 'invalid_api_key');
    await expect401(bearer(generateKey('other').plaintext), 'invalid_api_key');
    expect(await metricValue(service, 'tollgate_authz_key_cache_total')).toBe(before);
  });

  it('unknown key; a flood of the same unknown key costs one Postgres lookup', async () => {
    const unknown = generateKey('sk').plaintext;
    const lookupsBefore = await metricValue(service, 'tollgate_authz_key_lookups_total');
    await Promise.all(Array.from({ length: 50 }, () => check({ headers: bearer(unknown) })));
    await expect401(bearer(unknown), 'invalid_api_key');
    expect(await metricValue(service, 'tollgate_authz_key_lookups_total')).toBe(lookupsBefore + 1);
  });

  it('revoked key', async () => {
    const { key, plaintext } = await createKey(service);
    await service.deps.keyStore.revoke(key.id, 'admin', 'leaked');
    await expect401(bearer(plaintext), 'key_revoked');
  });

  it('expired key', async () => {
    const { plaintext } = await createKey(service, { expiresAt: new Date(Date.now() - 1000) });
    await expect401(bearer(plaintext), 'key_expired');
  });

  it('401s count against no key', async () => {
    const { key, plaintext } = await createKey(service, { rateLimitPerMinute: 2 });
    await service.deps.keyStore.revoke(key.id, 'admin', null);
    for (let i = 0; i < 3; i++) await check({ headers: bearer(plaintext) });
    expect(await service.deps.redis.exists(`${env.redisPrefix}rl:{${key.id}}`)).toBe(0);
  });
});

describe('403: scopes', () => {
  it('read_only allows GET and refuses POST, publishing the refusal for billing', async () => {
    const { key, plaintext } = await createKey(service, { permissionSet: 'read_only' });
    expect(httpStatusOf(await check({ method: 'GET', path: '/hello', headers: bearer(plaintext) }))).toBe(200);
    const res = await check({ method: 'POST', path: '/echo', headers: bearer(plaintext) });
    expect(httpStatusOf(res)).toBe(403);
    expect(JSON.parse(res.deniedResponse!.body).error).toBe('insufficient_scope');
    expect(headersOf(res.deniedResponse?.headers)['www-authenticate']).toContain('scope="write"');
    expect(metadataOf(res)).toMatchObject({ user_id: key.userId, key_id: key.id, decision: 'deny', error_code: 'insufficient_scope' });
  });

  it('path-limited scopes and route rules', async () => {
    const { plaintext } = await createKey(service, { permissionSet: null, scopes: ['read:/reports/'] });
    expect(httpStatusOf(await check({ path: '/reports/2026?x=1', headers: bearer(plaintext) }))).toBe(200);
    expect(httpStatusOf(await check({ path: '/hello', headers: bearer(plaintext) }))).toBe(403);
    const full = await createKey(service, { permissionSet: null, scopes: ['read', 'write'] });
    expect(httpStatusOf(await check({ path: '/admin/users', headers: bearer(full.plaintext) }))).toBe(403);
    const admin = await createKey(service, { permissionSet: null, scopes: ['admin'] });
    expect(httpStatusOf(await check({ path: '/admin/users', headers: bearer(admin.plaintext) }))).toBe(200);
  });
});

describe('429: rate limits', () => {
  it('allows exactly the per-minute limit, then 429 with Retry-After and rate-limit headers', async () => {
    const { key, plaintext } = await createKey(service, { rateLimitPerMinute: 3, rateLimitPerDay: 1000 });
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 5; i++) {
      last = await check({ headers: bearer(plaintext) });
      statuses.push(httpStatusOf(last));
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const h = headersOf(last!.deniedResponse?.headers);
    expect(Number(h['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(h['x-ratelimit-limit']).toBe('3');
    expect(h['x-ratelimit-remaining']).toBe('0');
    expect(h['ratelimit-policy']).toBe('"minute";q=3;w=60, "day";q=1000;w=86400');
    expect(h['ratelimit']).toMatch(/^"minute";r=0;t=\d+$/);
    expect(JSON.parse(last!.deniedResponse!.body).error).toBe('rate_limited');
    expect(metadataOf(last!)).toMatchObject({ key_id: key.id, decision: 'deny', error_code: 'rate_limited' });
  });

  it('counts the day limit alongside the minute limit', async () => {
    const { plaintext } = await createKey(service, { rateLimitPerMinute: 100, rateLimitPerDay: 2 });
    const s = [];
    for (let i = 0; i < 3; i++) s.push(httpStatusOf(await check({ headers: bearer(plaintext) })));
    expect(s).toEqual([200, 200, 429]);
  });

  it('tells the client its remaining quota on allowed requests', async () => {
    const { plaintext } = await createKey(service, { rateLimitPerMinute: 10 });
    const res = await check({ headers: bearer(plaintext) });
    const h = headersOf(res.okResponse?.responseHeadersToAdd);
    expect(h['x-ratelimit-limit']).toBe('10');
    expect(h['x-ratelimit-remaining']).toBe('9');
    expect(Number(h['x-ratelimit-reset'])).toBeLessThanOrEqual(60);
  });
});

describe('bad gRPC input', () => {
  it('answers INVALID_ARGUMENT with a message when the request has no HTTP attributes', async () => {
    const { loadEnvoyProtos } = await import('@tollgate/proto');
    const grpc = await import('@grpc/grpc-js');
    const protos = loadEnvoyProtos();
    const client = new protos.envoy.service.auth.v3.Authorization(`127.0.0.1:${service.grpcPort}`, grpc.credentials.createInsecure());
    const err = await new Promise<{ code: number; details: string }>((resolve) =>
      client.Check({}, (e) => resolve(e as unknown as { code: number; details: string })),
    );
    client.close();
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/attributes\.request\.http/);
  });
});

describe('logs', () => {
  it('never contain a presented key', async () => {
    const { plaintext } = await createKey(service, { rateLimitPerMinute: 1 });
    await check({ headers: bearer(plaintext) });
    await check({ headers: bearer(plaintext) }); // 429, logged
    await check({ headers: bearer(corruptChecksum(plaintext)) }); // 401, logged
    const log = service.lines.join('');
    expect(log).toContain('request denied');
    expect(log).not.toContain(plaintext);
    expect(log).not.toContain(corruptChecksum(plaintext));
  });
});

export type { AuthzService };

describe('rotation grace', () => {
  it('a cached pre-rotation secret stops working when its grace ends, not when the cache entry does', async () => {
    const { key, plaintext: oldSecret } = await createKey(service);
    const { generateKey: gen } = await import('../src/domain/key-format.js');
    const next = gen('sk');
    // Rotate with a 1.5 s grace, as the management API does: the old hash becomes the previous one.
    await service.deps.pool.query(
      `update api_keys set previous_key_hash = key_hash, previous_key_expires_at = now() + interval '1500 milliseconds',
         key_hash = $2, key_prefix = $3 where id = $1`,
      [key.id, service.deps.hasher.primary(next.plaintext), next.displayPrefix],
    );
    await service.deps.keyEvents.keyChanged(key.id);
    await new Promise((r) => setTimeout(r, 100));
    expect(httpStatusOf(await check({ headers: bearer(oldSecret) }))).toBe(200); // cached now, KEY_CACHE_TTL_MS is 30 s
    expect(httpStatusOf(await check({ headers: bearer(next.plaintext) }))).toBe(200);
    await new Promise((r) => setTimeout(r, 1600));
    const res = await check({ headers: bearer(oldSecret) });
    expect(httpStatusOf(res)).toBe(401);
    expect(httpStatusOf(await check({ headers: bearer(next.plaintext) }))).toBe(200);
  });
});
