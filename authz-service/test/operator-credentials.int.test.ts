import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TestStack, type RunningEnvoy } from '@tollgate/devstack';
import {
  checkClient,
  createKey,
  inWaves,
  metadataOf,
  sleep,
  stackAuthz,
  stackEnv,
  startAuthzStack,
  startEnvoyFront,
  TEST_ADMIN_TOKEN,
  type TestAuthz,
} from './helpers.js';

// The managed phase (seed 000 phase 3): operator-owned credentials for keys granted a provider,
// after the client's own and the user's; several used in turn; isolation with all three sources.
const infra = inject('infra');
const MK = `mk1:${randomBytes(32).toString('base64')}`;
const ROUTES = JSON.stringify([{ prefix: '/echo/rooms/', default_provider: 'daily' }]);

let authz: TestAuthz;
let envoy: RunningEnvoy;
let grpc: ReturnType<typeof checkClient>;
const stack = new TestStack();

beforeAll(async () => {
  let front;
  ({ authz, front } = await startAuthzStack(stack, infra, 'operator-creds', { config: { VAULT_MASTER_KEYS: MK, PROVIDER_ROUTES: ROUTES }, envoy: true }));
  envoy = front.envoy;
  grpc = checkClient(authz.grpcPort);
});

afterAll(async () => {
  grpc?.close();
  await stack.stop();
});

const call = async (headers: Record<string, string>, path = '/echo/rooms/x') => {
  const res = await fetch(`${envoy.url}${path}`, { headers });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : null };
};
const adminOf = (service: TestAuthz) => (method: string, path: string, body?: unknown) =>
  fetch(`http://127.0.0.1:${service.httpPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  }).then(async (r) => ({ status: r.status, body: await r.json() }));
const admin = (method: string, path: string, body?: unknown) => adminOf(authz)(method, path, body);
const secret = (what: string) => `daily_${what}_${randomBytes(8).toString('hex')}`;

describe('operator credentials', () => {
  const opSecrets: string[] = [];
  const opIds: string[] = [];

  it('are stored through the admin API, write-only: only metadata comes back, only ciphertext is stored', async () => {
    for (const label of ['acct-1', 'acct-2']) {
      const s = secret(`op_${label}`);
      const r = await admin('POST', '/api/operator-credentials', { provider: 'Daily', label, secret: s });
      expect(r.status).toBe(201);
      expect(r.body).toMatchObject({ object: 'operator_credential', provider: 'daily', label });
      expect(JSON.stringify(r.body)).not.toContain(s);
      opSecrets.push(s);
      opIds.push(r.body.id);
    }
    const list = await admin('GET', '/api/operator-credentials');
    expect(list.body.data.map((c: { id: string }) => c.id).sort()).toEqual([...opIds].sort());
    expect(JSON.stringify(list.body)).not.toMatch(/daily_op_/);
    const rows = await authz.deps.pool.query(
      "select encode(wrapped_dek,'escape') as w, encode(ciphertext,'escape') as c, fingerprint, label from operator_credentials",
    );
    for (const s of opSecrets) expect(JSON.stringify(rows.rows)).not.toContain(s);
  });

  it('precedence: own X-Provider-Auth → the user’s → the operator’s (granted keys only) → 400 provider_credential_missing', async () => {
    const granted = await createKey(authz, { userId: 'p-user', metadata: { managed_providers: ['daily'] } });
    const notGranted = await createKey(authz, { userId: 'p-user2' });
    const own = secret('own');
    const byok = await call({ authorization: `Bearer ${granted.plaintext}`, 'x-provider-auth': `Bearer ${own}` });
    expect(byok.body.headers['x-provider-auth']).toBe(`Bearer ${own}`);
    const op = await call({ authorization: `Bearer ${granted.plaintext}` });
    expect(op.status).toBe(200);
    expect(opSecrets.map((s) => `Bearer ${s}`)).toContain(op.body.headers['x-provider-auth']);
    const stored = secret('user');
    await authz.deps.vault.set('p-user', 'daily', stored);
    await sleep(100);
    const user = await call({ authorization: `Bearer ${granted.plaintext}` });
    expect(user.body.headers['x-provider-auth']).toBe(`Bearer ${stored}`);
    const missing = await call({ authorization: `Bearer ${notGranted.plaintext}` });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toBe('provider_credential_missing');
    // A grant for another provider does not reach this one.
    const other = await createKey(authz, { userId: 'p-user3', metadata: { managed_providers: ['openai'] } });
    expect((await call({ authorization: `Bearer ${other.plaintext}` })).status).toBe(400);
  });

  it('the decision metadata says which source and which operator credential served the request', async () => {
    const granted = await createKey(authz, { userId: 'm-user', metadata: { managed_providers: ['daily'] } });
    const own = await grpc.check({ path: '/echo/rooms/x', headers: { authorization: `Bearer ${granted.plaintext}`, 'x-provider-auth': 'mine' } });
    expect(metadataOf(own)).toMatchObject({ provider: 'daily', credential_source: 'byok' });
    expect(metadataOf(own).operator_credential_id).toBeUndefined();
    const op = await grpc.check({ path: '/echo/rooms/x', headers: { authorization: `Bearer ${granted.plaintext}` } });
    expect(metadataOf(op)).toMatchObject({ provider: 'daily', credential_source: 'operator' });
    expect(opIds).toContain(metadataOf(op).operator_credential_id);
    await authz.deps.vault.set('m-user', 'daily', secret('user'));
    await sleep(100);
    const user = await grpc.check({ path: '/echo/rooms/x', headers: { authorization: `Bearer ${granted.plaintext}` } });
    expect(metadataOf(user)).toMatchObject({ provider: 'daily', credential_source: 'user' });
    for (const r of [own, op, user]) for (const s of opSecrets) expect(JSON.stringify(metadataOf(r))).not.toContain(s);
  });

  it('several operator credentials are used in turn (round robin)', async () => {
    const k = await createKey(authz, { userId: 'rr-user', metadata: { managed_providers: ['daily'] } });
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push((await call({ authorization: `Bearer ${k.plaintext}` })).body.headers['x-provider-auth']);
    const counts = new Map<string, number>();
    for (const s of seen) counts.set(s, (counts.get(s) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual(opSecrets.map((s) => `Bearer ${s}`).sort());
    expect([...counts.values()]).toEqual([3, 3]);
    // Consecutive requests alternate.
    for (let i = 1; i < seen.length; i++) expect(seen[i]).not.toBe(seen[i - 1]);
  });

  it('a rotated operator credential is used within a second; a deleted one no more', async () => {
    const k = await createKey(authz, { userId: 'rot-user', metadata: { managed_providers: ['daily'] } });
    const next = secret('op_rotated');
    expect((await admin('PUT', `/api/operator-credentials/${opIds[0]}`, { secret: next })).status).toBe(200);
    opSecrets[0] = next;
    await sleep(1000);
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add((await call({ authorization: `Bearer ${k.plaintext}` })).body.headers['x-provider-auth']);
    expect([...seen].sort()).toEqual(opSecrets.map((s) => `Bearer ${s}`).sort());
    const extra = await admin('POST', '/api/operator-credentials', { provider: 'daily', label: 'temp', secret: secret('op_temp') });
    expect((await admin('DELETE', `/api/operator-credentials/${extra.body.id}`)).status).toBe(200);
    await sleep(1000);
    for (let i = 0; i < 4; i++)
      expect(opSecrets.map((s) => `Bearer ${s}`)).toContain((await call({ authorization: `Bearer ${k.plaintext}` })).body.headers['x-provider-auth']);
  });

  it('isolation under load: byok, user and operator callers of one provider each get exactly their precedence’s credential', async () => {
    const testerA = await createKey(authz, { userId: 'tester-a' });
    const testerB = await createKey(authz, { userId: 'tester-b' });
    const managed = await createKey(authz, { userId: 'tester-managed', metadata: { managed_providers: ['daily'] } });
    // Granted daily, but its user stored one: the user's wins over the operator's.
    const managedOwn = await createKey(authz, { userId: 'tester-managed-own', metadata: { managed_providers: ['daily'] } });
    const notGranted = await createKey(authz, { userId: 'tester-none' });
    const sa = secret('tester_a');
    const sb = secret('tester_b');
    const sm = secret('tester_managed_own');
    await authz.deps.vault.set('tester-a', 'daily', sa);
    await authz.deps.vault.set('tester-b', 'daily', sb);
    await authz.deps.vault.set('tester-managed-own', 'daily', sm);
    const operatorAuths = opSecrets.map((s) => `Bearer ${s}`);
    // A client's own credential is the only one it may get back.
    const byok = (i: number, key: { plaintext: string }, user: string) => {
      const own = `daily_byok_${i}_${randomBytes(4).toString('hex')}`;
      return { key, own, want: { user, auth: [own] } };
    };
    type Want = { user: string; auth: string[] } | { status: 400 };
    // Each kind: who calls, what it sends, and what its precedence rule must have chosen.
    const kinds: ((i: number) => { key: { plaintext: string }; own?: string; want: Want })[] = [
      () => ({ key: testerA, want: { user: 'tester-a', auth: [`Bearer ${sa}`] } }),
      () => ({ key: testerB, want: { user: 'tester-b', auth: [`Bearer ${sb}`] } }),
      () => ({ key: managed, want: { user: 'tester-managed', auth: operatorAuths } }),
      (i) => byok(i, testerA, 'tester-a'),
      () => ({ key: managedOwn, want: { user: 'tester-managed-own', auth: [`Bearer ${sm}`] } }),
      (i) => byok(i, managed, 'tester-managed'),
      () => ({ key: notGranted, want: { status: 400 } }),
    ];
    const cases = Array.from({ length: 210 }, (_, i) => kinds[i % kinds.length]!(i));
    // 210 requests, 21 in flight at a time: the seven kinds interleaved in each wave.
    const answers = await inWaves(cases.length, kinds.length * 3, (i) => {
      const { key, own } = cases[i]!;
      return call({ authorization: `Bearer ${key.plaintext}`, ...(own ? { 'x-provider-auth': own } : {}) });
    });
    const operatorSeen = new Set<string>();
    for (const [i, r] of answers.entries()) {
      const { want } = cases[i]!;
      if ('status' in want) {
        expect(r.status, r.text).toBe(400);
        expect(r.body.error).toBe('provider_credential_missing');
        for (const s of [...opSecrets, sa, sb, sm]) expect(r.text).not.toContain(s);
        continue;
      }
      expect(r.status, r.text).toBe(200);
      expect(r.body.headers['x-user-id']).toBe(want.user);
      expect(want.auth).toContain(r.body.headers['x-provider-auth']);
      if (want.user === 'tester-managed' && operatorAuths.includes(r.body.headers['x-provider-auth'])) operatorSeen.add(r.body.headers['x-provider-auth']);
    }
    // The operator's requests went round both of its credentials.
    expect([...operatorSeen].sort()).toEqual([...operatorAuths].sort());
  });

  it('an owner key cannot read operator credentials', async () => {
    const owner = await createKey(authz, { userId: 'owner-x', permissionSet: null, scopes: ['keys:manage'] });
    const r = await fetch(`http://127.0.0.1:${authz.httpPort}/api/operator-credentials`, { headers: { authorization: `Bearer ${owner.plaintext}` } });
    expect(r.status).toBe(403);
    expect(await r.text()).not.toMatch(/daily_op_/);
  });

  it('no operator secret in any log line or metric', async () => {
    const log = authz.lines.join('');
    const metrics = await authz.deps.registry.metrics();
    expect(metrics).toContain('tollgate_authz_operator_credential_uses_total');
    for (const s of opSecrets) {
      expect(log).not.toContain(s);
      expect(metrics).not.toContain(s);
    }
  });
});

describe('development mode (PROVIDER_CREDENTIALS_FROM_ENV)', () => {
  const devStack = new TestStack();
  afterAll(() => devStack.stop());

  it('serves PROVIDER_KEY_<NAME> as the operator credential to granted keys, through Envoy', async () => {
    const devSecret = secret('dev_env');
    const { authz: dev, front } = await startAuthzStack(devStack, infra, 'operator-creds-dev', {
      config: { PROVIDER_ROUTES: ROUTES, PROVIDER_CREDENTIALS_FROM_ENV: 'true', PROVIDER_KEY_DAILY: devSecret },
      envoy: true,
    });
    const granted = await createKey(dev, { userId: 'dev', metadata: { managed_providers: ['daily'] } });
    const plain = await createKey(dev, { userId: 'dev2' });
    const r = await fetch(`${front.envoy.url}/echo/rooms/x`, { headers: { authorization: `Bearer ${granted.plaintext}` } });
    expect(r.status).toBe(200);
    expect((await r.json()).headers['x-provider-auth']).toBe(`Bearer ${devSecret}`);
    const denied = await fetch(`${front.envoy.url}/echo/rooms/x`, { headers: { authorization: `Bearer ${plain.plaintext}` } });
    expect(denied.status).toBe(400);
    expect(dev.lines.join('')).not.toContain(devSecret);
  });
});

describe('master-key rotation (VAULT_MASTER_KEYS) with operator credentials', () => {
  const rotStack = new TestStack();
  afterAll(() => rotStack.stop());
  const mk = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;

  it('rewrap moves them to the new key: a replica holding only the new key serves them through Envoy', async () => {
    const [mk1, mk2] = [mk('mk1'), mk('mk2')];
    const env = await stackEnv(rotStack, infra, 'operator-creds-rewrap');
    const config = { PROVIDER_ROUTES: ROUTES };
    const before = await stackAuthz(rotStack, env, { ...config, VAULT_MASTER_KEYS: mk1 });
    const opSecret = secret('op_rewrap');
    const created = await adminOf(before)('POST', '/api/operator-credentials', { provider: 'daily', label: 'rewrap', secret: opSecret });
    expect(created.body).toMatchObject({ master_key_id: 'mk1' });
    const userSecret = secret('user_rewrap');
    await before.deps.vault.set('rw-user', 'daily', userSecret);
    const granted = await createKey(before, { userId: 'rw-managed', metadata: { managed_providers: ['daily'] } });
    const own = await createKey(before, { userId: 'rw-user' });

    // A replica started with the new key only (the old one dropped too early) cannot open them yet…
    const newOnly = await stackAuthz(rotStack, env, { ...config, VAULT_MASTER_KEYS: mk2 });
    const front = await startEnvoyFront(rotStack, newOnly.grpcPort);
    const through = async (plaintext: string) => {
      const r = await fetch(`${front.url}/echo/rooms/x`, { headers: { authorization: `Bearer ${plaintext}` } });
      const text = await r.text();
      return { status: r.status, text, body: text ? JSON.parse(text) : null };
    };
    const refused = await through(granted.plaintext);
    expect(refused.status).toBe(503);
    expect(refused.body.error).toBe('provider_credential_unreadable');
    expect(refused.text).not.toContain(opSecret);

    // …until a replica holding both keys rewraps: users' and operator's rows in one call.
    const both = await stackAuthz(rotStack, env, { ...config, VAULT_MASTER_KEYS: `${mk2},${mk1}` });
    const rewrap = await adminOf(both)('POST', '/api/vault/rewrap');
    expect(rewrap.status).toBe(200);
    expect(rewrap.body).toEqual({
      rewrapped: 2,
      failed: 0,
      master_key_id: 'mk2',
      by_table: { provider_keys: { rewrapped: 1, failed: 0 }, operator_credentials: { rewrapped: 1, failed: 0 }, webhook_secrets: { rewrapped: 0, failed: 0 } },
    });
    const rows = await both.deps.pool.query('select id, master_key_id from operator_credentials');
    expect(rows.rows).toEqual([{ id: created.body.id, master_key_id: 'mk2' }]);
    const list = await adminOf(both)('GET', '/api/operator-credentials');
    expect(list.body.data[0]).toMatchObject({ id: created.body.id, master_key_id: 'mk2', fingerprint: created.body.fingerprint });

    // The rewrap announced the operator's set, so the new-key-only replica uses it within a second.
    let served = refused;
    for (const start = Date.now(); Date.now() - start < 1000 && served.status !== 200; await sleep(50)) served = await through(granted.plaintext);
    expect(served.status, served.text).toBe(200);
    expect(served.body.headers['x-provider-auth']).toBe(`Bearer ${opSecret}`);
    // The user's row moved in the same call (first read by this replica now, so not cached before).
    const user = await through(own.plaintext);
    expect(user.status, user.text).toBe(200);
    expect(user.body.headers['x-provider-auth']).toBe(`Bearer ${userSecret}`);

    // Nothing under the old key is left, so it can go; a second rewrap has nothing to do.
    expect((await adminOf(both)('POST', '/api/vault/rewrap')).body).toMatchObject({ rewrapped: 0, failed: 0 });
    for (const service of [before, newOnly, both]) expect(service.lines.join('')).not.toContain(opSecret);
  });

  it('a row that cannot be rewrapped is counted and logged by id, the others still move', async () => {
    const [mk1, mk2] = [mk('mk1'), mk('mk2')];
    const env = await stackEnv(rotStack, infra, 'operator-creds-rewrap-bad');
    const before = await stackAuthz(rotStack, env, { VAULT_MASTER_KEYS: mk1 });
    const good = await adminOf(before)('POST', '/api/operator-credentials', { provider: 'daily', label: 'good', secret: secret('op_good') });
    const moved = await adminOf(before)('POST', '/api/operator-credentials', { provider: 'daily', label: 'moved', secret: secret('op_moved') });
    // A row moved to another provider: its binding no longer matches, so its data key does not open.
    await before.deps.pool.query("update operator_credentials set provider = 'openai' where id = $1", [moved.body.id]);
    const both = await stackAuthz(rotStack, env, { VAULT_MASTER_KEYS: `${mk2},${mk1}` });
    const rewrap = await adminOf(both)('POST', '/api/vault/rewrap');
    expect(rewrap.body.by_table.operator_credentials).toEqual({ rewrapped: 1, failed: 1 });
    const rows = await both.deps.pool.query('select id, master_key_id from operator_credentials order by label');
    expect(rows.rows).toEqual([
      { id: good.body.id, master_key_id: 'mk2' },
      { id: moved.body.id, master_key_id: 'mk1' },
    ]);
    expect(both.lines.join('')).toContain(moved.body.id);
    expect(both.lines.join('')).toMatch(/could not rewrap operator credential/);
  });
});
