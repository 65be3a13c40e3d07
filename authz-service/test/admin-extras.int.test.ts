import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TestStack, type RunningEnvoy } from '@tollgate/devstack';
import type { BillingSidecar } from '../../billing-sidecar/src/index.js';
import { stackBillingSidecar } from './billing-helpers.js';
import { seedBody } from './api-helpers.js';
import { sleep, stackAuthz, stackEnv, startEnvoyFront, TEST_ADMIN_TOKEN, type TestAuthz, type TestEnv } from './helpers.js';

// The management API beyond keys: service tokens (seed 001), the provider-key vault (seeds
// 000/002) and usage (what billing charges), against the whole pipeline: Envoy, the Check,
// the billing sidecar and Postgres.
const infra = inject('infra');
const ROUTES = JSON.stringify([{ prefix: '/captionacc/prefect/api/', project: 'captionacc' }]);
let env: TestEnv;
let authz: TestAuthz;
let billing: BillingSidecar;
let envoy: RunningEnvoy;
let api: string;
const stack = new TestStack();

beforeAll(async () => {
  env = await stackEnv(stack, infra, 'extras');
  authz = await stackAuthz(stack, env, {
    GATEWAY_JWT_SECRET: 'k1:' + randomBytes(24).toString('hex'),
    SERVICE_TOKEN_ROUTES: ROUTES,
    VAULT_MASTER_KEYS: `mk1:${randomBytes(32).toString('base64')}`,
    PROVIDER_ROUTES: JSON.stringify([{ prefix: '/echo/rooms/', default_provider: 'daily' }]),
  });
  api = `http://127.0.0.1:${authz.httpPort}`;
  const accessLog = join(mkdtempSync(join(tmpdir(), 'tollgate-log-')), 'access.log');
  billing = await stackBillingSidecar(stack, env, { ENVOY_ACCESS_LOG_PATH: accessLog });
  envoy = (await startEnvoyFront(stack, authz.grpcPort, { alsPort: billing.grpcPort, accessLogPath: accessLog })).envoy;
});

afterAll(() => stack.stop());

async function call(method: string, path: string, body?: unknown, token: string | null = TEST_ADMIN_TOKEN) {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${api}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
}

async function ownerKey(userId: string): Promise<string> {
  const r = await call('POST', '/api/keys', seedBody(userId, { scopes: ['keys:manage', 'read', 'write'] }));
  expect(r.status).toBe(201);
  return r.body.key;
}

describe('service tokens over the management API', () => {
  it('create (token shown once), use through Envoy, list, unused, revoke', async () => {
    const created = await call('POST', '/api/tokens', { project: 'captionacc', service: 'api', description: 'CaptionA.cc API service', expires_in_days: 90 });
    expect(created.status).toBe(201);
    const { token, jti } = created.body;
    expect(token.split('.')).toHaveLength(3);
    expect(created.body).toMatchObject({ project: 'captionacc', service: 'api', status: 'active', routes: ['/captionacc/'] });

    const through = await fetch(`${envoy.url}/captionacc/prefect/api/health`, { headers: { authorization: `Bearer ${token}` } });
    expect(through.status).toBe(200);

    const one = await call('GET', `/api/tokens/${jti}`);
    expect(JSON.stringify(one.body)).not.toContain(token);
    const active = await call('GET', '/api/tokens?active=true');
    expect(active.body.data.map((t: { jti: string }) => t.jti)).toContain(jti);
    const unused = await call('GET', '/api/tokens?unused_days=7');
    // Just used: not in the unused list once last_used_at is flushed (batched, once a second).
    await sleep(1300);
    const unusedAfter = await call('GET', '/api/tokens?unused_days=7');
    expect(unused.status).toBe(200);
    expect(unusedAfter.body.data.map((t: { jti: string }) => t.jti)).not.toContain(jti);

    const revoked = await call('POST', `/api/tokens/${jti}/revoke`, { reason: 'decommissioned' });
    expect(revoked.body).toMatchObject({ status: 'revoked', revoked_reason: 'decommissioned', revoked_by: 'admin' });
    const start = Date.now();
    let status = 200;
    while (Date.now() - start < 1000 && status === 200) {
      status = (await fetch(`${envoy.url}/captionacc/prefect/api/health`, { headers: { authorization: `Bearer ${token}` } })).status;
    }
    expect(status).toBe(401);
    const audit = await authz.deps.pool.query("select action, details from audit_log where action like 'token.%' and details->>'jti' = $1 order by id", [jti]);
    expect(audit.rows.map((r) => r.action)).toEqual(['token.created', 'token.revoked']);
    expect(JSON.stringify(audit.rows)).not.toContain(token);
  });

  it('owners cannot manage service tokens; bad input is a 400', async () => {
    const owner = await ownerKey('tok-owner');
    expect((await call('GET', '/api/tokens', undefined, owner)).status).toBe(403);
    expect((await call('POST', '/api/tokens', { project: 'BAD NAME', service: 'x' })).status).toBe(400);
    expect((await call('POST', '/api/tokens', { project: 'p', service: 's', extra: 1 })).status).toBe(400);
    expect((await call('POST', '/api/tokens/not-a-jti!/revoke', {})).status).toBe(400);
    expect((await call('POST', '/api/tokens/00000000-0000-0000-0000-000000000000/revoke', {})).status).toBe(404);
  });
});

describe('provider-key vault over the management API', () => {
  it('PUT stores (write-only), GET lists metadata, the gateway injects, DELETE removes', async () => {
    const owner = await ownerKey('vault-user');
    const secret = `daily_${randomBytes(10).toString('hex')}`;
    const put = await call('PUT', '/api/users/vault-user/provider-keys/Daily', { secret }, owner);
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ provider: 'daily', user_id: 'vault-user' });
    expect(JSON.stringify(put.body)).not.toContain(secret);
    expect((await call('PUT', '/api/users/vault-user/provider-keys/daily', { secret: secret + 'x' }, owner)).status).toBe(200);
    const list = await call('GET', '/api/users/vault-user/provider-keys', undefined, owner);
    expect(list.body.data).toHaveLength(1);
    expect(JSON.stringify(list.body)).not.toContain(secret);

    const echoed = await (await fetch(`${envoy.url}/echo/rooms/create`, { headers: { authorization: `Bearer ${owner}` } })).json();
    expect(echoed.headers['x-provider-auth']).toBe(`Bearer ${secret}x`);

    expect((await call('DELETE', '/api/users/vault-user/provider-keys/daily', undefined, owner)).status).toBe(200);
    expect((await call('DELETE', '/api/users/vault-user/provider-keys/daily', undefined, owner)).status).toBe(404);
    const missing = await fetch(`${envoy.url}/echo/rooms/create`, { headers: { authorization: `Bearer ${owner}` } });
    expect(missing.status).toBe(400);
  });

  it('an owner reaches only its own user’s vault; rewrap is admin-only', async () => {
    const owner = await ownerKey('vault-a');
    expect((await call('PUT', '/api/users/vault-b/provider-keys/daily', { secret: 's3cret-value' }, owner)).status).toBe(403);
    expect((await call('GET', '/api/users/vault-b/provider-keys', undefined, owner)).status).toBe(403);
    expect((await call('POST', '/api/vault/rewrap', undefined, owner)).status).toBe(403);
    const rewrap = await call('POST', '/api/vault/rewrap');
    expect(rewrap.status).toBe(200);
    expect(rewrap.body).toMatchObject({ failed: 0, master_key_id: 'mk1' });
    expect((await call('PUT', '/api/users/vault-a/provider-keys/daily', { secret: '' })).status).toBe(400);
    expect((await call('PUT', '/api/users/vault-a/provider-keys/bad name', { secret: 'x' })).status).toBe(400);
  });
});

describe('usage over the management API', () => {
  it('requests through Envoy show up per user and per key; owners see only their own', async () => {
    const created = await call('POST', '/api/keys', seedBody('usage-user', { scopes: ['keys:manage', 'read'], rate_limit_per_minute: 3 }));
    const { id, key } = created.body;
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await fetch(`${envoy.url}/hello?i=${i}`, { headers: { authorization: `Bearer ${key}` } })).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    let usage: any;
    const deadline = Date.now() + 10_000;
    do {
      await sleep(100);
      usage = (await call('GET', '/api/usage/usage-user')).body;
    } while (usage.total_requests < 5 && Date.now() < deadline);
    expect(usage).toMatchObject({ user_id: 'usage-user', total_requests: 5, billable_requests: 3 });
    expect(usage.keys).toEqual([expect.objectContaining({ key_id: id, total_requests: 5, billable_requests: 3 })]);

    const byKey = await call('GET', `/api/keys/${id}/usage?granularity=hour`, undefined, key);
    expect(byKey.status).toBe(200);
    expect(byKey.body).toMatchObject({ key_id: id, total_requests: 5, granularity: 'hour' });
    expect(byKey.body.buckets).toHaveLength(1);

    const other = await ownerKey('usage-other');
    expect((await call('GET', '/api/usage/usage-user', undefined, other)).status).toBe(403);
    expect((await call('GET', `/api/keys/${id}/usage`, undefined, other)).status).toBe(404);
    expect((await call('GET', '/api/usage/usage-user?from=yesterday')).status).toBe(400);
    expect((await call('GET', '/api/billing/status')).body).toMatchObject({ pending_events: 0, parked_events: [] });
  });
});
