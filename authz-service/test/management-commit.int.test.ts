import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { TestStack } from '@tollgate/devstack';
import { IDEMPOTENCY_TTL_HOURS, IdempotencyStore } from '../src/stores/idempotency-store.js';
import { startTestApi, type TestApi } from './api-helpers.js';
import { sleep, stackAuthz, stackEnv } from './helpers.js';

// A management change and its audit row commit together, and the answer says what happened:
// a failure after the commit (publishing the cache invalidation) is logged, not answered as a
// 500; a failure before it (the audit row) rolls the change back. And expired Idempotency-Key
// records are purged by the service's periodic sweep.
const infra = inject('infra');
let api: TestApi;
const restore: (() => void)[] = [];

beforeAll(async () => {
  api = await startTestApi(infra, 'mgmt-commit', {
    GATEWAY_JWT_SECRET: `k1:${randomBytes(24).toString('hex')}`,
    VAULT_MASTER_KEYS: `mk1:${randomBytes(32).toString('base64')}`,
  });
});

afterEach(() => {
  for (const undo of restore.splice(0)) undo();
});

afterAll(async () => {
  await api?.stop();
});

/** Makes every cache-invalidation publish fail, as when Redis is unreachable. */
function publishingFails() {
  const events = api.deps.keyEvents;
  const saved = { providerKeyChanged: events.providerKeyChanged, tokenChanged: events.tokenChanged, keyChanged: events.keyChanged };
  const fail = async () => {
    throw new Error('redis unreachable (test)');
  };
  Object.assign(events, { providerKeyChanged: fail, tokenChanged: fail, keyChanged: fail });
  restore.push(() => Object.assign(events, saved));
}

async function auditFor(action: string, match: Record<string, string>) {
  const r = await api.deps.pool.query<{ actor: string; user_id: string | null; details: Record<string, unknown> }>(
    'select actor, user_id, details from audit_log where action = $1 order by id',
    [action],
  );
  return r.rows.filter((row) => Object.entries(match).every(([k, v]) => row.details[k] === v || (k === 'user_id' && row.user_id === v)));
}

async function newToken() {
  const r = await api.call('POST', '/api/tokens', { body: { project: 'commit', service: 'api' } });
  expect(r.status).toBe(201);
  return r.body.jti as string;
}

describe('a failure after the commit is not a 500', () => {
  it('vault set and delete answer what happened, with their audit rows, when the publish fails', async () => {
    publishingFails();
    const put = await api.call('PUT', '/api/users/pub-fail/provider-keys/daily', { body: { secret: 'daily_secret_value_0001' } });
    expect(put.status, put.text).toBe(201);
    expect(await api.deps.vaultStore.get('pub-fail', 'daily')).not.toBeNull();
    expect(await auditFor('provider_key.set', { user_id: 'pub-fail', provider: 'daily' })).toHaveLength(1);

    const del = await api.call('DELETE', '/api/users/pub-fail/provider-keys/daily');
    expect(del.status, del.text).toBe(200);
    expect(await api.deps.vaultStore.get('pub-fail', 'daily')).toBeNull();
    expect(await auditFor('provider_key.deleted', { user_id: 'pub-fail', provider: 'daily' })).toHaveLength(1);
    expect(api.lines.join('\n')).toContain('could not publish the change after commit');
  });

  it('token revoke answers 200 with its audit row when the publish fails', async () => {
    const jti = await newToken();
    publishingFails();
    const r = await api.call('POST', `/api/tokens/${jti}/revoke`, { body: { reason: 'leaked' } });
    expect(r.status, r.text).toBe(200);
    expect(r.body.status).toBe('revoked');
    expect((await api.deps.tokenStore.get(jti))!.revokedAt).not.toBeNull();
    expect(await auditFor('token.revoked', { jti })).toEqual([expect.objectContaining({ actor: 'admin', details: { jti, reason: 'leaked' } })]);
  });
});

describe('a change and its audit row are one transaction', () => {
  /** Makes every audit insert fail, so any change that is not in one transaction with it shows. */
  async function auditFails() {
    await api.deps.pool.query(`
      create or replace function test_fail_audit() returns trigger language plpgsql as $$
        begin raise exception 'audit log unavailable (test)'; end $$;
      create trigger test_fail_audit before insert on audit_log for each row execute function test_fail_audit();`);
  }

  afterEach(async () => {
    await api.deps.pool.query('drop trigger if exists test_fail_audit on audit_log');
  });

  it('no audit row, no change: vault set and delete, token issue and revoke', async () => {
    await api.call('PUT', '/api/users/audit-fail/provider-keys/zoom', { body: { secret: 'zoom_secret_first_value' } });
    const stored = await api.deps.vaultStore.get('audit-fail', 'zoom');
    const jti = await newToken();
    const tokens = (await api.deps.pool.query('select count(*)::int as n from gateway_tokens')).rows[0].n;
    await auditFails();

    expect((await api.call('PUT', '/api/users/audit-fail/provider-keys/zoom', { body: { secret: 'zoom_secret_second_value' } })).status).toBe(500);
    expect((await api.call('PUT', '/api/users/audit-fail/provider-keys/daily', { body: { secret: 'daily_secret_never_kept' } })).status).toBe(500);
    expect((await api.call('DELETE', '/api/users/audit-fail/provider-keys/zoom')).status).toBe(500);
    expect(await api.deps.vaultStore.get('audit-fail', 'zoom')).toEqual(stored);
    expect(await api.deps.vaultStore.get('audit-fail', 'daily')).toBeNull();

    expect((await api.call('POST', `/api/tokens/${jti}/revoke`, { body: {} })).status).toBe(500);
    expect((await api.deps.tokenStore.get(jti))!.revokedAt).toBeNull();
    expect((await api.call('POST', '/api/tokens', { body: { project: 'commit', service: 'lost' } })).status).toBe(500);
    expect((await api.deps.pool.query('select count(*)::int as n from gateway_tokens')).rows[0].n).toBe(tokens);
  });
});

describe('expired Idempotency-Key records are purged', () => {
  const stack = new TestStack();
  afterAll(() => stack.stop());

  it('purgeExpired removes at most its batch, oldest first, and never a live record', async () => {
    const pool = api.deps.pool;
    await pool.query(
      `insert into idempotency_keys (scope, key, request_hash, status, response, created_at)
      select 'purge-test', 'old-' || i, 'h', 201, 'null'::jsonb, now() - make_interval(hours => $1 + i) from generate_series(1, 5) i`,
      [IDEMPOTENCY_TTL_HOURS],
    );
    await pool.query(
      `insert into idempotency_keys (scope, key, request_hash, status, response, created_at)
      values ('purge-test', 'live', 'h', 201, 'null'::jsonb, now() - make_interval(hours => $1 - 1))`,
      [IDEMPOTENCY_TTL_HOURS],
    );
    const store = new IdempotencyStore();
    expect(await store.purgeExpired(pool, 2)).toBe(2);
    const left = async () => (await pool.query(`select key from idempotency_keys where scope = 'purge-test' order by key`)).rows.map((r) => r.key);
    expect(await left()).toEqual(['live', 'old-1', 'old-2', 'old-3']);
    expect(await store.purgeExpired(pool, 100)).toBe(3);
    expect(await left()).toEqual(['live']);
  });

  it('the running service sweeps them periodically, in batches, and keeps the last 24 hours', async () => {
    const env = await stackEnv(stack, infra, 'idem-sweep');
    const authz = await stackAuthz(stack, env, { IDEMPOTENCY_SWEEP_INTERVAL_MS: '200' });
    const pool = authz.deps.pool;
    // More than one batch (SWEEP_BATCH = 1000) of expired records, and some that are not.
    await pool.query(
      `insert into idempotency_keys (scope, key, request_hash, status, response, created_at)
      select 'admin', 'expired-' || i, 'h', 201, 'null'::jsonb, now() - make_interval(hours => $1, secs => i) from generate_series(1, 2500) i`,
      [IDEMPOTENCY_TTL_HOURS],
    );
    await pool.query(
      `insert into idempotency_keys (scope, key, request_hash, status, response, created_at)
      select 'admin', 'recent-' || i, 'h', 201, 'null'::jsonb, now() - make_interval(hours => $1 - 1) from generate_series(1, 3) i`,
      [IDEMPOTENCY_TTL_HOURS],
    );
    const count = async (like: string) => (await pool.query(`select count(*)::int as n from idempotency_keys where key like $1`, [like])).rows[0].n as number;
    for (let i = 0; i < 100 && (await count('expired-%')) > 0; i++) await sleep(100);
    expect(await count('expired-%')).toBe(0);
    expect(await count('recent-%')).toBe(3);
    expect(authz.lines.join('\n')).toContain('purged expired idempotency records');
  });
});
