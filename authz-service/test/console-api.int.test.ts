import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migrateBilling } from '@tollgate/usage-model';
import type { AuthzService } from '../src/app.js';
import { startTestApi, type TestApi } from './api-helpers.js';
import { createKey } from './helpers.js';

// The API the console reads (docs/management-api.md, "Console reads"): the audit log with filters
// and cursor pages, and usage by outcome class over HTTP. Roll-up maintenance itself is tested
// in billing-sidecar/test/ingest.int.test.ts; here the roll-up rows are written directly.
const infra = inject('infra');
let api: TestApi;
let ownerToken: string;
const asService = () => ({ deps: api.deps }) as unknown as AuthzService;

beforeAll(async () => {
  api = await startTestApi(infra, 'console-api');
  await migrateBilling(api.deps.pool);
  ownerToken = (await createKey(asService(), { userId: 'con-alice', permissionSet: null, scopes: ['keys:manage', 'read'] })).plaintext;
});

afterAll(async () => {
  await api?.stop();
});

describe('GET /api/audit-events', () => {
  it('pages newest first by cursor, with filters; an owner sees only its own user’s key events', async () => {
    const made: string[] = [];
    for (const user of ['con-alice', 'con-alice', 'con-bob']) {
      const r = await api.call('POST', '/api/keys', { body: { user_id: user, name: `for ${user}` } });
      made.push(r.body.id);
    }
    await api.call('POST', `/api/keys/${made[0]}/revoke`, { body: { reason: 'audit test' } });

    const first = await api.call('GET', '/api/audit-events?limit=2');
    expect(first.status).toBe(200);
    expect(first.body.data.map((e: { action: string; key_id: string }) => [e.action, e.key_id])).toEqual([
      ['key.revoked', made[0]],
      ['key.created', made[2]],
    ]);
    const second = await api.call('GET', `/api/audit-events?limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body.data.map((e: { key_id: string }) => e.key_id)).toEqual([made[1], made[0]]);
    expect(second.body.next_cursor).toBeNull();

    const revoked = await api.call('GET', `/api/audit-events?action=key.revoked&actor=admin&key_id=${made[0]}`);
    expect(revoked.body.data).toHaveLength(1);
    expect(revoked.body.data[0]).toMatchObject({ actor: 'admin', user_id: 'con-alice', details: { reason: 'audit test' } });
    const future = new Date(Date.now() + 60_000).toISOString();
    expect((await api.call('GET', `/api/audit-events?since=${encodeURIComponent(future)}`)).body.data).toEqual([]);
    expect((await api.call('GET', `/api/audit-events?until=${encodeURIComponent(future)}`)).body.data).toHaveLength(4);

    const asOwner = await api.call('GET', '/api/audit-events', { token: ownerToken });
    expect(asOwner.body.data.map((e: { user_id: string }) => e.user_id)).toEqual(['con-alice', 'con-alice', 'con-alice']);
    expect((await api.call('GET', '/api/audit-events?cursor=abc')).body.error).toBe('invalid_request');
  });
});

describe('GET /api/keys?q=&status=', () => {
  it('finds keys by name, user, key prefix or id, and filters by status; owners search only their own', async () => {
    const mk = async (user: string, name: string, extra: Record<string, unknown> = {}) =>
      (await api.call('POST', '/api/keys', { body: { user_id: user, name, ...extra } })).body;
    const billing = await mk('srch-dana', 'Billing worker');
    const soon = await mk('srch-dana', 'nightly 100%_job', { expires_in_days: 3 });
    const revoked = await mk('srch-erik', 'old billing');
    await api.call('POST', `/api/keys/${revoked.id}/revoke`, { body: {} });
    const suspended = await mk('srch-erik', 'paused');
    await api.call('PATCH', `/api/keys/${suspended.id}`, { body: { is_active: false } });
    const ids = async (query: string, token?: string) =>
      ((await api.call('GET', `/api/keys?${query}`, token ? { token } : {})).body.data as { id: string }[]).map((k) => k.id).sort();

    expect(await ids('q=BILLING')).toEqual([billing.id, revoked.id].sort());
    expect(await ids('q=srch-erik')).toEqual([revoked.id, suspended.id].sort());
    expect(await ids(`q=${encodeURIComponent(billing.key_prefix)}`)).toEqual([billing.id]);
    expect(await ids(`q=${billing.id}`)).toEqual([billing.id]);
    // LIKE's wildcards are searched for literally.
    expect(await ids(`q=${encodeURIComponent('100%_')}`)).toEqual([soon.id]);
    expect(await ids('q=srch&status=revoked')).toEqual([revoked.id]);
    expect(await ids('q=srch&status=suspended')).toEqual([suspended.id]);
    expect(await ids('q=srch&status=expiring')).toEqual([soon.id]);
    expect(await ids('q=srch&status=active')).toEqual([billing.id, soon.id].sort());
    expect(await ids('q=billing', ownerToken)).toEqual([]);
    expect((await api.call('GET', '/api/keys?status=gone')).body.error).toBe('invalid_request');
  });
});

describe('usage by outcome class', () => {
  async function rollUp(keyId: string, userId: string, bucket: string, c: { total: number; allowed: number; rate_limited: number }) {
    for (const table of ['usage_hourly', 'usage_daily']) {
      const b = table === 'usage_daily' ? `${bucket.slice(0, 10)}T00:00:00Z` : bucket;
      await api.deps.pool.query(
        `insert into ${table} (bucket, key_id, user_id, credential, total_requests, billable_requests, request_bytes, response_bytes, duration_ms_total,
                               last_request_at, allowed_requests, rate_limited_requests)
         values ($1, $2, $3, 'api_key', $4, $5, 0, 0, 0, $7, $5, $6)`,
        [b, keyId, userId, c.total, c.allowed, c.rate_limited, bucket],
      );
    }
  }

  it('serves a key’s and a user’s series, a page of keys, and the operator overview', async () => {
    const a = await api.call('POST', '/api/keys', { body: { user_id: 'con-carol', name: 'a' } });
    const b = await api.call('POST', '/api/keys', { body: { user_id: 'con-carol', name: 'b' } });
    await rollUp(a.body.id, 'con-carol', '2032-05-01T10:00:00Z', { total: 10, allowed: 7, rate_limited: 2 });
    await rollUp(b.body.id, 'con-carol', '2032-05-02T11:00:00Z', { total: 4, allowed: 4, rate_limited: 0 });
    // A key deleted since: its usage stays, its name is gone.
    await rollUp('key_deleted_since', 'con-dave', '2032-05-02T12:00:00Z', { total: 1, allowed: 1, rate_limited: 0 });
    const range = 'from=2032-05-01T00:00:00Z&to=2032-05-03T00:00:00Z';

    const key = await api.call('GET', `/api/keys/${a.body.id}/usage/series?${range}&bucket=hour`);
    expect(key.status).toBe(200);
    expect(key.body.points).toHaveLength(48);
    expect(key.body.points[10]).toEqual({
      t: '2032-05-01T10:00:00.000Z',
      allowed: 7,
      unauthenticated: 0,
      forbidden: 0,
      rate_limited: 2,
      server_error: 0,
      other: 1,
    });
    const user = await api.call('GET', `/api/usage/con-carol/series?${range}`);
    expect(user.body.points.map((p: { allowed: number }) => p.allowed)).toEqual([7, 4]);

    const page = await api.call('GET', `/api/keys/usage?ids=${a.body.id},${b.body.id}&${range}`);
    expect(page.body.data[a.body.id]).toMatchObject({ requests: 10, daily: [10, 0], last_used_at: '2032-05-01T10:00:00.000Z' });
    expect(page.body.data[b.body.id]).toMatchObject({ requests: 4, daily: [0, 4] });
    expect((await api.call('GET', `/api/keys/usage?ids=${a.body.id}`, { token: ownerToken })).status).toBe(404);

    const overview = await api.call('GET', `/api/overview?${range}&bucket=day`);
    expect(overview.status).toBe(200);
    expect(overview.body.series.points.map((p: { rate_limited: number }) => p.rate_limited)).toEqual([2, 0]);
    expect(overview.body.top_keys.map((k: { id: string; name: string | null }) => [k.id, k.name])).toEqual([
      [a.body.id, 'a'],
      [b.body.id, 'b'],
      ['key_deleted_since', null],
    ]);
    expect(overview.body.top_users).toEqual([
      { id: 'con-carol', requests: 14 },
      { id: 'con-dave', requests: 1 },
    ]);
    expect(overview.body.billing).toMatchObject({ pending_events: 0, parked_events: [] });
    expect((await api.call('GET', '/api/overview', { token: ownerToken })).body.error).toBe('forbidden');
  });
});
