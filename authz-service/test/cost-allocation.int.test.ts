import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TestStack } from '@tollgate/devstack';
import { startBillingSidecar, type BillingSidecar } from '../../billing-sidecar/src/index.js';
import { compareLogPaths, silentLogger, testConfig, waitUntil } from '../../billing-sidecar/test/helpers.js';
import { run } from '../../cli/src/program.js';
import { createKey, sleep, stackAuthz, stackEnv, startEnvoyFront, TEST_ADMIN_TOKEN, type EnvoyFront, type TestAuthz } from './helpers.js';

// Cost allocation (issue 21 item 3, with issue 18's route costs), through the whole pipeline:
// real Envoy, the real Check with operator, user and client credentials for two providers,
// the real billing sidecar, Postgres, and stripe-mock for the meter events. Every request
// must be recorded with its cost units, provider and credential source; the reads must break
// the totals down that way; managed usage must reach Stripe on its provider's meter and only
// there; and no provider secret may appear in any usage or billing row.
const infra = inject('infra');
const stack = new TestStack();
let authz: TestAuthz;
let billing: BillingSidecar;
let front: EnvoyFront;
let api: string;

/** `Bearer <secret>` values the upstream answers 401. */
const refusedByProvider = new Set<string>();
const MANAGED_METERS = { daily: 'managed_daily', openai: 'managed_openai' };
const CHAT_COST = 5;

beforeAll(async () => {
  const env = await stackEnv(stack, infra, 'cost_allocation');
  authz = await stackAuthz(stack, env, {
    VAULT_MASTER_KEYS: `mk1:${randomBytes(32).toString('base64')}`,
    PROVIDER_ROUTES: JSON.stringify([
      { prefix: '/echo/rooms/', default_provider: 'daily' },
      { prefix: '/echo/chat/', default_provider: 'openai' },
      { prefix: '/echo/search/', default_provider: 'exa' },
    ]),
    OPERATOR_CREDENTIAL_REJECT_STATUSES: '401',
    OPERATOR_CREDENTIAL_HEALTH_INTERVAL_MS: '100',
    ROUTE_COSTS: JSON.stringify([{ prefix: '/echo/chat/', cost: CHAT_COST }]),
  });
  api = `http://127.0.0.1:${authz.httpPort}`;
  // The sidecar shares authz-service's database, as in the stack: the usage reads are the API's.
  billing = await stack.start(
    'billing-sidecar',
    () =>
      startBillingSidecar(
        testConfig(env.databaseUrl, {
          STRIPE_API_KEY: 'sk_test_tollgate',
          STRIPE_API_BASE: infra.stripeMockUrl,
          STRIPE_AGGREGATION_INTERVAL_SECONDS: '1',
          STRIPE_DRAIN_INTERVAL_MS: '100',
          STRIPE_MANAGED_METER_EVENTS: JSON.stringify(MANAGED_METERS),
        }),
        silentLogger,
      ),
    (sidecar) => sidecar.stop(),
  );
  const accessLog = join(mkdtempSync(join(tmpdir(), 'tollgate-cost-log-')), 'access.log');
  writeFileSync(accessLog, '');
  front = await startEnvoyFront(stack, authz.grpcPort, {
    alsPort: billing.grpcPort,
    accessLogPath: accessLog,
    // The provider: 401 for a credential it does not accept.
    upstreamRefusal: (headers) => (refusedByProvider.has(String(headers['x-provider-auth'])) ? 401 : undefined),
  });
});

afterAll(() => stack.stop());

async function call(method: string, path: string, body?: unknown) {
  const headers: Record<string, string> = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${api}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
}

/** One request through Envoy: its status and the provider credential the upstream got. */
async function once(path: string, key: string): Promise<{ status: number; credential: string }> {
  const res = await fetch(`${front.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
  const body = (await res.json()) as { headers?: Record<string, string>; error?: string };
  return { status: res.status, credential: body.headers?.['x-provider-auth'] ?? body.error ?? '' };
}

/** Requests through Envoy, each answered 200 by the upstream (which echoes the credential it got). */
async function send(n: number, path: string, key: string, headers: Record<string, string> = {}): Promise<string[]> {
  const got: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${front.url}${path}`, { headers: { authorization: `Bearer ${key}`, ...headers } });
    expect(res.status).toBe(200);
    const text = await res.text();
    // /echo answers the request it got as JSON; /hello answers text.
    got.push(path.startsWith('/echo/') ? ((JSON.parse(text) as { headers: Record<string, string> }).headers['x-provider-auth'] ?? '') : '');
  }
  return got;
}

const secret = (what: string) => `sk_${what}_${randomBytes(8).toString('hex')}`;

describe('cost allocation through Envoy', () => {
  const secrets: string[] = [];
  const opIds: Record<string, string[]> = { daily: [], openai: [] };
  let managedKey: string;
  let byokKeyId: string;

  it('records every request with its cost units, provider and credential source, and never a secret', async () => {
    for (const [provider, n] of [
      ['daily', 2],
      ['openai', 1],
    ] as const) {
      for (let i = 0; i < n; i++) {
        const s = secret(`op_${provider}_${i}`);
        const r = await call('POST', '/api/operator-credentials', { provider, label: `acct-${i}`, secret: s });
        expect(r.status).toBe(201);
        secrets.push(s);
        opIds[provider]!.push(r.body.id);
      }
    }
    const managed = await createKey(authz, { userId: 'alloc-managed', stripeCustomerId: 'cus_allocM', metadata: { managed_providers: ['daily', 'openai'] } });
    const user = await createKey(authz, { userId: 'alloc-user', stripeCustomerId: 'cus_allocU' });
    const byok = await createKey(authz, { userId: 'alloc-byok', stripeCustomerId: 'cus_allocB' });
    managedKey = managed.key.id;
    byokKeyId = byok.key.id;
    const stored = secret('user_daily');
    const own = secret('own_openai');
    secrets.push(stored, own);
    await authz.deps.vault.set('alloc-user', 'daily', stored);
    await sleep(100);

    // Managed: 4 daily (1 unit each) and 2 chat requests (5 units each) on the operator's
    // accounts, and one request that needs no provider.
    const managedDaily = await send(4, '/echo/rooms/x', managed.plaintext);
    expect(new Set(managedDaily).size).toBe(2);
    await send(2, '/echo/chat/x', managed.plaintext);
    await send(1, '/hello', managed.plaintext);
    // The user's own stored daily credential, and a client bringing its own openai key.
    expect(await send(3, '/echo/rooms/x', user.plaintext)).toEqual(Array(3).fill(`Bearer ${stored}`));
    expect(await send(2, '/echo/chat/x', byok.plaintext, { 'x-provider-auth': `Bearer ${own}` })).toEqual(Array(2).fill(`Bearer ${own}`));

    const rows = await waitUntil('12 usage rows', async () => {
      const r = await billing.pool.query('select * from usage_records order by key_id, started_at');
      return r.rows.length >= 12 ? r.rows : undefined;
    });
    expect(rows).toHaveLength(12);
    const shape = (keyId: string) =>
      rows
        .filter((r) => r.key_id === keyId)
        .map((r) => [r.path, r.cost, r.provider, r.credential_source, r.operator_credential_id === null ? null : 'id', r.billable]);
    expect(shape(managed.key.id)).toEqual([
      ...Array(4).fill(['/echo/rooms/x', 1, 'daily', 'operator', 'id', true]),
      ...Array(2).fill(['/echo/chat/x', CHAT_COST, 'openai', 'operator', 'id', true]),
      ['/hello', 1, null, null, null, true],
    ]);
    // Which operator account served each managed request: both daily ones in turn, the one openai one.
    const managedRows = rows.filter((r) => r.key_id === managed.key.id && r.credential_source === 'operator');
    expect(new Set(managedRows.filter((r) => r.provider === 'daily').map((r) => r.operator_credential_id))).toEqual(new Set(opIds.daily));
    expect(new Set(managedRows.filter((r) => r.provider === 'openai').map((r) => r.operator_credential_id))).toEqual(new Set(opIds.openai));
    expect(shape(user.key.id)).toEqual(Array(3).fill(['/echo/rooms/x', 1, 'daily', 'user', null, true]));
    expect(shape(byok.key.id)).toEqual(Array(2).fill(['/echo/chat/x', CHAT_COST, 'openai', 'byok', null, true]));

    // No secret in any usage or billing row (nor in the roll-ups).
    const everything = await Promise.all(
      ['usage_records', 'usage_hourly', 'usage_daily', 'stripe_pending', 'stripe_outbox'].map(
        async (t) => (await billing.pool.query(`select * from ${t}`)).rows,
      ),
    );
    const dump = JSON.stringify(everything);
    for (const s of secrets) expect(dump).not.toContain(s);
    expect(dump).not.toMatch(/sk_(op|user|own)_/);

    // Both of Envoy's log paths say the same, the new fields included.
    await waitUntil('the file log', async () => (await compareLogPaths(billing.pool, front.envoy.accessLogPath!)).disagreements.length === 0).catch(() => {});
    expect((await compareLogPaths(billing.pool, front.envoy.accessLogPath!)).disagreements).toEqual([]);
  });

  it('the usage reads and the CLI break the totals down by provider and credential source, in cost units', async () => {
    const u = await call('GET', '/api/usage/alloc-managed');
    expect(u.status).toBe(200);
    expect(u.body).toMatchObject({ total_requests: 7, billable_requests: 7, cost_units: 4 + 2 * CHAT_COST + 1, billable_cost_units: 15 });
    const part = (provider: string | null, source: string | null, requests: number, cost: number) => ({
      provider,
      credential_source: source,
      total_requests: requests,
      billable_requests: requests,
      refused_requests: 0,
      cost_units: cost,
      billable_cost_units: cost,
    });
    expect(u.body.by_source).toEqual([part('openai', 'operator', 2, 10), part('daily', 'operator', 4, 4), part(null, null, 1, 1)]);
    expect(u.body.keys).toEqual([expect.objectContaining({ key_id: managedKey, cost_units: 15 })]);

    const k = await call('GET', `/api/keys/${byokKeyId}/usage?granularity=hour`);
    expect(k.status).toBe(200);
    expect(k.body).toMatchObject({ total_requests: 2, cost_units: 10, by_source: [part('openai', 'byok', 2, 10)] });
    expect(k.body.buckets).toEqual([expect.objectContaining({ total_requests: 2, cost_units: 10, billable_cost_units: 10 })]);
    expect((await call('GET', '/api/usage/alloc-user')).body.by_source).toEqual([part('daily', 'user', 3, 3)]);

    let stdout = '';
    const code = await run(['usage', 'alloc-managed'], {
      env: { TOLLGATE_API_URL: api, TOLLGATE_TOKEN: TEST_ADMIN_TOKEN },
      output: { out: (t) => (stdout += `${t}\n`), err: (t) => (stdout += `${t}\n`) },
    });
    expect(code).toBe(0);
    expect(stdout).toMatch(/COST/);
    expect(stdout).toMatch(/By provider and credential source/);
    expect(stdout).toMatch(/openai\s*│\s*operator\s*│\s*2\s*│\s*2\s*│\s*0\s*│\s*10\s*│\s*10/);
    expect(stdout).toMatch(/daily\s*│\s*operator\s*│\s*4\s*│\s*4\s*│\s*0\s*│\s*4\s*│\s*4/);
  });

  it('bills cost units, managed usage on its provider’s meter only, and stripe-mock accepts every event', async () => {
    const events = await waitUntil(
      'every meter event sent',
      async () => {
        const r = await billing.pool.query<{ event_name: string; stripe_customer_id: string; value: string; status: string }>(
          'select event_name, stripe_customer_id, value, status from stripe_outbox',
        );
        const total = r.rows.reduce((a, e) => a + Number(e.value), 0);
        return total === 15 + 3 + 10 && r.rows.every((e) => e.status === 'sent') ? r.rows : undefined;
      },
      20_000,
    );
    const sums: Record<string, number> = {};
    for (const e of events) sums[`${e.event_name} ${e.stripe_customer_id}`] = (sums[`${e.event_name} ${e.stripe_customer_id}`] ?? 0) + Number(e.value);
    expect(sums).toEqual({
      'managed_daily cus_allocM': 4,
      'managed_openai cus_allocM': 2 * CHAT_COST,
      'api_requests cus_allocM': 1,
      'api_requests cus_allocU': 3,
      'api_requests cus_allocB': 2 * CHAT_COST,
    });
    expect((await billing.pool.query('select count(*)::int as n from stripe_pending')).rows[0].n).toBe(0);
  });
});

describe('an operator credential its provider rejects', () => {
  const metrics = () => authz.deps.registry.metrics();
  const outOfRotation = async () =>
    Number(/tollgate_authz_operator_credentials_out_of_rotation\{[^}]*provider="exa"[^}]*\} (\d+)/.exec(await metrics())?.[1] ?? -1);

  it('is taken out of rotation once a rejection is recorded, announced by id only, and is back once rotated', async () => {
    const good = secret('op_exa_good');
    const bad = secret('op_exa_bad');
    refusedByProvider.add(`Bearer ${bad}`);
    const g = await call('POST', '/api/operator-credentials', { provider: 'exa', label: 'good', secret: good });
    const b = await call('POST', '/api/operator-credentials', { provider: 'exa', label: 'bad', secret: bad });
    expect([g.status, b.status]).toEqual([201, 201]);
    const k = await createKey(authz, { userId: 'exa-user', metadata: { managed_providers: ['exa'] } });

    // In turn: one of the first two requests goes out with the rejected credential.
    const first = [await once('/echo/search/x', k.plaintext), await once('/echo/search/x', k.plaintext)];
    expect(first.map((r) => r.status).sort()).toEqual([200, 401]);
    await waitUntil('the credential out of rotation', async () => (await outOfRotation()) === 1, 10_000);
    for (let i = 0; i < 6; i++) expect(await once('/echo/search/x', k.plaintext)).toEqual({ status: 200, credential: `Bearer ${good}` });
    const text = await metrics();
    expect(text).toMatch(new RegExp(`tollgate_authz_operator_credential_rejections_total\\{[^}]*credential_id="${b.body.id}"[^}]*status="401"[^}]*\\} 1`));
    for (const s of [good, bad]) expect(text).not.toContain(s);
    // The rejected request is on record against the credential that served it.
    const rejected = await billing.pool.query('select * from operator_credential_statuses where operator_credential_id = $1', [b.body.id]);
    expect(rejected.rows).toEqual([expect.objectContaining({ status: 401, requests: '1' })]);
    // The operator sees which one is out, and why, in the list.
    const rotation = async () =>
      Object.fromEntries(
        (await call('GET', '/api/operator-credentials')).body.data.map((c: any) => [c.label, { in_rotation: c.in_rotation, rejected: c.rejected }]),
      );
    expect(await rotation()).toMatchObject({
      good: { in_rotation: true, rejected: null },
      bad: { in_rotation: false, rejected: { status: 401, last_seen_at: expect.any(String) } },
    });

    // Rotated to a secret the provider accepts: back in rotation, both used in turn again.
    const fixed = secret('op_exa_fixed');
    expect((await call('PUT', `/api/operator-credentials/${b.body.id}`, { secret: fixed })).status).toBe(200);
    await waitUntil('back in rotation', async () => (await outOfRotation()) === 0, 10_000);
    expect((await rotation()).bad).toEqual({ in_rotation: true, rejected: null });
    await sleep(200);
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await once('/echo/search/x', k.plaintext);
      expect(r.status).toBe(200);
      seen.add(r.credential);
    }
    expect([...seen].sort()).toEqual([`Bearer ${fixed}`, `Bearer ${good}`].sort());

    // Every one rejected: managed requests are refused by the gateway (503), not sent to be rejected.
    refusedByProvider.add(`Bearer ${good}`);
    refusedByProvider.add(`Bearer ${fixed}`);
    for (let i = 0; i < 2; i++) expect((await once('/echo/search/x', k.plaintext)).status).toBe(401);
    await waitUntil('both out of rotation', async () => (await outOfRotation()) === 2, 10_000);
    expect(await once('/echo/search/x', k.plaintext)).toEqual({ status: 503, credential: 'provider_credential_unreadable' });
  });
});
