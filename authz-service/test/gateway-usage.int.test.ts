import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TestStack } from '@tollgate/devstack';
import type { BillingSidecar } from '../../billing-sidecar/src/index.js';
import { stackBillingSidecar } from './billing-helpers.js';
import { compareLogPaths, waitUntil } from '../../billing-sidecar/test/helpers.js';
import { run } from '../../cli/src/program.js';
import { seedBody } from './api-helpers.js';
import { stackAuthz, stackEnv, startEnvoyFront, TEST_ADMIN_TOKEN, type EnvoyFront, type TestAuthz, type TestEnv } from './helpers.js';

// What the gateway's refusals and service tokens cost (issue 15, items 3 and 4), through the
// whole pipeline: a real Envoy, the real Check, the real billing sidecar, Postgres. The sidecar
// reads the gRPC stream only; Envoy still writes its JSON file log, which the test decodes to
// prove both log paths say the same about every request.
const infra = inject('infra');
let env: TestEnv;
let authz: TestAuthz;
let billing: BillingSidecar;
let front: EnvoyFront;
let api: string;
const stack = new TestStack();

beforeAll(async () => {
  env = await stackEnv(stack, infra, 'gateway_usage');
  authz = await stackAuthz(stack, env, {
    GATEWAY_JWT_SECRET: 'k1:' + randomBytes(24).toString('hex'),
    SERVICE_TOKEN_ROUTES: JSON.stringify([{ prefix: '/captionacc/prefect/api/', project: 'captionacc' }]),
    VAULT_MASTER_KEYS: `mk1:${randomBytes(32).toString('base64')}`,
    PROVIDER_ROUTES: JSON.stringify([{ prefix: '/echo/rooms/', default_provider: 'daily' }]),
    PROVIDER_BYOK: 'deny',
  });
  api = `http://127.0.0.1:${authz.httpPort}`;
  billing = await stackBillingSidecar(stack, env);
  const accessLog = join(mkdtempSync(join(tmpdir(), 'tollgate-usage-log-')), 'access.log');
  writeFileSync(accessLog, '');
  front = await startEnvoyFront(stack, authz.grpcPort, { alsPort: billing.grpcPort, accessLogPath: accessLog });
});

afterAll(() => stack.stop());

async function call(method: string, path: string, body?: unknown, token: string = TEST_ADMIN_TOKEN) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${api}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
}

/** Requests through Envoy; the statuses, in order. */
async function send(n: number, path: string, credential: string, init: { method?: string; headers?: Record<string, string> } = {}): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${front.url}${path}`, { method: init.method ?? 'GET', headers: { authorization: `Bearer ${credential}`, ...init.headers } });
    await res.arrayBuffer();
    statuses.push(res.status);
  }
  return statuses;
}

async function rows(where: string, params: unknown[]): Promise<Record<string, unknown>[]> {
  return (await billing.pool.query(`select * from usage_records where ${where} order by started_at`, params)).rows;
}

async function settled(what: string, where: string, params: unknown[], n: number): Promise<Record<string, unknown>[]> {
  return waitUntil(what, async () => {
    const r = await rows(where, params);
    return r.length >= n ? r : undefined;
  });
}

describe('the gateway’s own refusals', () => {
  it('a read_only key’s 12 POSTs are 12 refusals on record, none billable, and they do not use up its rate limit', async () => {
    const created = await call('POST', '/api/keys', seedBody('refused-user', { permission_set: 'read_only', rate_limit_per_minute: 3 }));
    const { id, key } = created.body;
    expect(await send(12, '/echo', key, { method: 'POST' })).toEqual(Array(12).fill(403));
    // Refusals run before the limiter: all three allowed requests are still there, then a 429.
    expect(await send(4, '/hello', key)).toEqual([200, 200, 200, 429]);

    const recorded = await settled('16 rows', 'key_id = $1', [id], 16);
    expect(recorded).toHaveLength(16);
    const refused = recorded.filter((r) => r.status === 403);
    expect(refused).toHaveLength(12);
    for (const r of refused) expect(r).toMatchObject({ decision: 'deny', error_code: 'insufficient_scope', billable: false, user_id: 'refused-user' });
    expect(recorded.filter((r) => r.status === 429)).toEqual([expect.objectContaining({ decision: 'deny', error_code: 'rate_limited', billable: false })]);
    expect(recorded.filter((r) => r.billable).map((r) => [r.status, r.decision])).toEqual([
      [200, 'allow'],
      [200, 'allow'],
      [200, 'allow'],
    ]);

    const usage = await call('GET', `/api/keys/${id}/usage?granularity=hour`);
    expect(usage.body).toMatchObject({ key_id: id, total_requests: 16, billable_requests: 3, refused_requests: 13 });
    expect((await call('GET', '/api/usage/refused-user')).body).toMatchObject({ total_requests: 16, billable_requests: 3, refused_requests: 13 });
  });

  it('provider-credential refusals are not billable; allowed requests, and the upstream’s own 4xx, are', async () => {
    const created = await call('POST', '/api/keys', seedBody('provider-user'));
    const { id, key } = created.body;
    // No daily credential in the vault: 400 provider_credential_missing.
    expect(await send(2, '/echo/rooms/create', key)).toEqual([400, 400]);
    // Bringing one's own under PROVIDER_BYOK=deny: 403 byok_not_allowed.
    expect(await send(1, '/echo/rooms/create', key, { headers: { 'x-provider-auth': 'Bearer own-secret' } })).toEqual([403]);
    expect(await send(2, '/hello', key)).toEqual([200, 200]);
    // The upstream itself answering 404: work done past the gateway, billed by the status rule.
    expect(await send(1, '/no-such-route', key)).toEqual([404]);

    const recorded = await settled('6 rows', 'key_id = $1', [id], 6);
    expect(recorded.map((r) => [r.status, r.decision, r.error_code, r.billable])).toEqual([
      [400, 'deny', 'provider_credential_missing', false],
      [400, 'deny', 'provider_credential_missing', false],
      [403, 'deny', 'byok_not_allowed', false],
      [200, 'allow', null, true],
      [200, 'allow', null, true],
      [404, 'allow', null, true],
    ]);
  });
});

describe('401s in the overview', () => {
  it('a revoked key’s 401s count on that key; unknown keys and missing credentials count unattributed; none is billed', async () => {
    const created = await call('POST', '/api/keys', seedBody('revoked-user'));
    const { id, key } = created.body;
    expect(await send(1, '/hello', key)).toEqual([200]);
    expect((await call('POST', `/api/keys/${id}/revoke`, { reason: 'leaked' })).status).toBe(200);
    // Revocation reaches the Check through the key-event feed: wait for the first refusal.
    await waitUntil('the revoked key refused', async () => (await send(1, '/hello', key))[0] === 401);
    expect(await send(2, '/hello', key)).toEqual([401, 401]);
    const unknown = `tg_${'a'.repeat(24)}`;
    const unknownStatuses = await send(3, '/hello', unknown);
    const noCredential = await fetch(`${front.url}/hello`);
    await noCredential.arrayBuffer();
    expect(noCredential.status).toBe(401);

    const revoked = await settled('the revoked key’s rows', 'key_id = $1 and status = 401', [id], 3);
    for (const r of revoked)
      expect(r).toMatchObject({ decision: 'deny', error_code: 'key_revoked', billable: false, user_id: 'revoked-user', credential: 'api_key' });
    const series = await call('GET', `/api/keys/${id}/usage/series?bucket=hour`);
    expect(series.body.points.reduce((n: number, p: { unauthenticated: number }) => n + p.unauthenticated, 0)).toBe(revoked.length);

    const unattributed = await settled('unattributed rows', "credential = 'none' and error_code = 'missing_credential'", [], 1);
    expect(unattributed[0]).toMatchObject({ key_id: '', user_id: null, decision: 'deny', billable: false, status: 401, stripe_customer_id: null });
    const unknownRows = await rows("credential = 'none' and error_code = any($1)", [['invalid_api_key', 'too_many_failed_attempts']]);
    expect(unknownRows.map((r) => r.status).sort()).toEqual([...unknownStatuses].sort());
    expect(unknownRows.every((r) => r.key_id === '' && r.billable === false)).toBe(true);

    const overview = await call('GET', '/api/overview?bucket=hour');
    expect(overview.status).toBe(200);
    const all = (overview.body.series.points as { unauthenticated: number }[]).reduce((n, p) => n + p.unauthenticated, 0);
    const recorded401 = Number((await billing.pool.query('select count(*) as n from usage_records where status = 401')).rows[0].n);
    expect(all).toBe(recorded401);
    expect(all).toBeGreaterThanOrEqual(revoked.length + 2);
    const denials = Object.fromEntries((overview.body.denials as { error_code: string; requests: number }[]).map((d) => [d.error_code, d.requests]));
    expect(denials).toMatchObject({ key_revoked: revoked.length, missing_credential: expect.any(Number) });
    expect(overview.body.top_keys.map((k: { id: string }) => k.id)).not.toContain('');
    // What Stripe would bill: nothing from any of these.
    const billed = await billing.pool.query(
      "select count(*)::int as n from usage_records where billable and (credential = 'none' or (key_id = $1 and status = 401))",
      [id],
    );
    expect(billed.rows[0].n).toBe(0);
  });
});

describe('service-token usage', () => {
  it('N requests with a valid token are N rows attributed to its jti, read back over the API and the CLI', async () => {
    const created = await call('POST', '/api/tokens', { project: 'captionacc', service: 'orchestrator', expires_in_days: 30 });
    expect(created.status).toBe(201);
    const { token, jti } = created.body;
    const N = 5;
    expect(await send(N, '/captionacc/prefect/api/health', token)).toEqual(Array(N).fill(200));
    // Outside the token's routes: refused by the gateway, recorded against the token, not billable.
    expect(await send(1, '/hello', token)).toEqual([403]);

    const recorded = await settled(`${N + 1} token rows`, 'key_id = $1', [jti], N + 1);
    expect(recorded).toHaveLength(N + 1);
    for (const r of recorded)
      expect(r).toMatchObject({ credential: 'service_token', user_id: null, project: 'captionacc', service: 'orchestrator', stripe_customer_id: null });
    expect(recorded.filter((r) => r.billable)).toHaveLength(N);
    expect(recorded.filter((r) => !r.billable)).toEqual([expect.objectContaining({ status: 403, decision: 'deny', error_code: 'route_not_allowed' })]);

    const usage = await call('GET', `/api/tokens/${jti}/usage?granularity=hour`);
    expect(usage.status).toBe(200);
    expect(usage.body).toMatchObject({
      jti,
      credential: 'service_token',
      project: 'captionacc',
      service: 'orchestrator',
      granularity: 'hour',
      total_requests: N + 1,
      billable_requests: N,
      refused_requests: 1,
    });
    expect(usage.body.buckets).toEqual([expect.objectContaining({ total_requests: N + 1, billable_requests: N })]);

    let stdout = '';
    const code = await run(['tokens', 'usage', jti, '--granularity', 'hour'], {
      env: { TOLLGATE_API_URL: api, TOLLGATE_TOKEN: TEST_ADMIN_TOKEN },
      output: { out: (t) => (stdout += `${t}\n`), err: (t) => (stdout += `${t}\n`) },
    });
    expect(code).toBe(0);
    expect(stdout).toContain(`${jti} (captionacc/orchestrator)`);
    expect(stdout).toMatch(new RegExp(`TOTAL\\D+${N + 1}\\D+${N}\\D+1\\D`));
  });

  it('is admin only, 404 for an unknown token, 400 for a malformed id', async () => {
    const owner = await call('POST', '/api/keys', seedBody('token-usage-owner', { scopes: ['keys:manage', 'read'] }));
    const jti = (await call('POST', '/api/tokens', { project: 'captionacc', service: 'web' })).body.jti;
    expect((await call('GET', `/api/tokens/${jti}/usage`, undefined, owner.body.key)).status).toBe(403);
    expect((await call('GET', '/api/tokens/00000000-0000-0000-0000-000000000000/usage')).status).toBe(404);
    expect((await call('GET', '/api/tokens/not_a_jti!/usage')).status).toBe(400);
    const quiet = await call('GET', `/api/tokens/${jti}/usage`);
    expect(quiet.body).toMatchObject({ jti, total_requests: 0, buckets: [] });
  });
});

describe('the two log paths', () => {
  it('Envoy’s JSON file says what the gRPC stream said about every request: verdict, attribution, billable', async () => {
    const total = Number((await billing.pool.query('select count(*) as n from usage_records')).rows[0].n);
    expect(total).toBeGreaterThan(0);
    // Envoy flushes the file every second: wait until every recorded request is in it.
    await waitUntil('the file log', async () => (await compareLogPaths(billing.pool, front.envoy.accessLogPath!)).disagreements.length === 0).catch(() => {});
    expect(await compareLogPaths(billing.pool, front.envoy.accessLogPath!)).toEqual({ rows: total, fromStream: total, disagreements: [] });
  });
});
