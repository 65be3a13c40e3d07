import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { keyEventsChannel } from '../src/stores/key-events.js';
import { KEY_ID_RE } from '../src/stores/key-store.js';
import { checkKeyShape, corruptChecksum } from '../src/domain/key-format.js';
import { SECOND_ADMIN_TOKEN, seedBody, startTestApi, tableCounts, type TestApi } from './api-helpers.js';
import { sleep, TEST_ADMIN_TOKEN } from './helpers.js';

// The management API over real Postgres and Redis: seed 003's calls, seed 004's lifecycle,
// authentication, validation, idempotency, audit, invalidation events.
const infra = inject('infra');
let api: TestApi;
let subscriber: Redis;
const events: string[] = [];
/** Every plaintext key any test was given, to prove none is ever readable again. */
const plaintexts: string[] = [];

beforeAll(async () => {
  api = await startTestApi(infra, 'mgmt', {
    PERMISSION_SETS: JSON.stringify({ training_pipeline: ['read', 'write:/training/'], key_admin: ['keys:manage', 'read'] }),
    ROTATION_GRACE_SECONDS: '3600',
  });
  subscriber = new Redis(api.env.redisUrl);
  await subscriber.subscribe(keyEventsChannel(api.env.redisPrefix));
  subscriber.on('message', (_ch: string, message: string) => events.push(message));
});

afterAll(async () => {
  subscriber?.disconnect();
  await api?.stop();
});

beforeEach(() => {
  events.length = 0;
});

let userSeq = 0;
const newUser = () => `user${Date.now()}${++userSeq}`;

async function create(userId: string, extra: Record<string, unknown> = {}, token?: string | null) {
  const r = await api.call('POST', '/api/keys', { body: seedBody(userId, extra), token });
  if (r.status === 201 && r.body.key) plaintexts.push(r.body.key);
  return r;
}

/** Waits for the key_changed event of `id` (published after the commit). */
async function expectKeyChanged(id: string) {
  for (let i = 0; i < 50 && !events.some((e) => JSON.parse(e).keyId === id); i++) await sleep(20);
  expect(events.map((e) => JSON.parse(e))).toContainEqual({ type: 'key_changed', keyId: id });
}

async function auditRows(keyId: string) {
  const r = await api.deps.pool.query('select actor, action, key_id, user_id, details from audit_log where key_id = $1 order by id', [keyId]);
  return r.rows;
}

describe("seed 003's curl examples (with the admin header)", () => {
  it('POST /api/keys answers 201 with top-level id and key', async () => {
    const r = await create('user123');
    expect(r.status).toBe(201);
    expect(r.body.id).toMatch(KEY_ID_RE);
    expect(checkKeyShape(r.body.key, ['sk'])).toBeNull();
    expect(r.body).toMatchObject({
      object: 'key',
      user_id: 'user123',
      name: 'My API Key',
      rate_limit_per_minute: 100,
      rate_limit_per_day: 10000,
      status: 'active',
      is_active: true,
      permission_set: 'full_access',
      effective_scopes: ['*'],
      usage_count: 0,
      last_used_at: null,
      created_by: 'admin',
    });
    expect(r.body.key.startsWith(r.body.key_prefix)).toBe(true);
    expect(r.body).not.toHaveProperty('key_hash');
  });

  it('GET /api/keys/user123 lists the user’s keys without secrets', async () => {
    const r = await api.call('GET', '/api/keys/user123');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ object: 'list', has_more: false, next_cursor: null });
    expect(r.body.data.length).toBeGreaterThan(0);
    for (const k of r.body.data) {
      expect(k.user_id).toBe('user123');
      expect(k).not.toHaveProperty('key');
    }
  });

  it('DELETE /api/keys/:id deletes the key; a second delete is 404', async () => {
    const created = await create(newUser());
    const r = await api.call('DELETE', `/api/keys/${created.body.id}`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ id: created.body.id, object: 'key', deleted: true });
    await expectKeyChanged(created.body.id);
    expect((await api.call('GET', `/api/keys/by-id/${created.body.id}`)).status).toBe(404);
    expect((await api.call('DELETE', `/api/keys/${created.body.id}`)).status).toBe(404);
    expect((await auditRows(created.body.id)).map((a) => a.action)).toEqual(['key.created', 'key.deleted']);
  });
});

describe('lifecycle', () => {
  it('gets one key by id', async () => {
    const created = await create(newUser(), { description: 'ci', metadata: { team: 'data' } });
    const r = await api.call('GET', `/api/keys/by-id/${created.body.id}`);
    expect(r.status).toBe(200);
    const { key: _k, ...record } = created.body;
    expect(r.body).toEqual(record);
    expect((await api.call('GET', '/api/keys/by-id/key_00000000000000000000')).status).toBe(404);
  });

  it('updates fields, publishes the change and audits it', async () => {
    const created = await create(newUser());
    const r = await api.call('PATCH', `/api/keys/${created.body.id}`, {
      body: {
        name: 'renamed',
        description: 'd',
        rate_limit_per_minute: 5,
        scopes: ['read:/reports/'],
        permission_set: 'training_pipeline',
        metadata: { a: 1 },
        stripe_customer_id: 'cus_ABC123',
      },
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      name: 'renamed',
      description: 'd',
      rate_limit_per_minute: 5,
      rate_limit_per_day: 10000,
      scopes: ['read:/reports/'],
      permission_set: 'training_pipeline',
      effective_scopes: ['read', 'write:/training/', 'read:/reports/'],
      metadata: { a: 1 },
      stripe_customer_id: 'cus_ABC123',
    });
    await expectKeyChanged(created.body.id);
    const audit = await auditRows(created.body.id);
    expect(audit.at(-1)).toMatchObject({ actor: 'admin', action: 'key.updated', user_id: created.body.user_id });
    expect(audit.at(-1).details.fields).toContain('name');
  });

  it('suspends and resumes a key with is_active', async () => {
    const created = await create(newUser());
    const off = await api.call('PATCH', `/api/keys/${created.body.id}`, { body: { is_active: false } });
    expect(off.body).toMatchObject({ is_active: false, status: 'inactive' });
    const on = await api.call('PATCH', `/api/keys/${created.body.id}`, { body: { is_active: true } });
    expect(on.body).toMatchObject({ is_active: true, status: 'active' });
  });

  it('revokes with a reason; revoking again changes nothing; a revoked key cannot be updated, extended or rotated', async () => {
    const created = await create(newUser());
    const r = await api.call('POST', `/api/keys/${created.body.id}/revoke`, { body: { reason: 'leaked in a log' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'revoked', is_active: false, revoked_reason: 'leaked in a log' });
    expect(r.body.revoked_at).not.toBeNull();
    await expectKeyChanged(created.body.id);

    const again = await api.call('POST', `/api/keys/${created.body.id}/revoke`);
    expect(again.status).toBe(200);
    expect(again.body.revoked_at).toBe(r.body.revoked_at);
    expect(again.body.revoked_reason).toBe('leaked in a log');

    const before = await tableCounts(api.deps);
    for (const [method, path, body] of [
      ['PATCH', '', { is_active: true }],
      ['POST', '/extend', { days: 1 }],
      ['POST', '/rotate', {}],
    ] as const) {
      const res = await api.call(method, `/api/keys/${created.body.id}${path}`, { body });
      expect(res.status).toBe(409);
      expect(res.body.error).toBe('key_revoked');
    }
    expect(await tableCounts(api.deps)).toEqual(before);
    expect((await auditRows(created.body.id)).map((a) => a.action)).toEqual(['key.created', 'key.revoked']);
  });

  it('extends the expiry by days or to a date, and clears it', async () => {
    const created = await create(newUser(), { expires_in_days: 1 });
    const first = new Date(created.body.expires_at).getTime();
    expect(first - Date.now()).toBeGreaterThan(86_000_000);

    const byDays = await api.call('POST', `/api/keys/${created.body.id}/extend`, { body: { days: 30 } });
    expect(byDays.status).toBe(200);
    expect(new Date(byDays.body.expires_at).getTime() - first).toBe(30 * 86_400_000);
    await expectKeyChanged(created.body.id);

    const target = new Date(Date.now() + 90 * 86_400_000).toISOString();
    const toDate = await api.call('POST', `/api/keys/${created.body.id}/extend`, { body: { expires_at: target } });
    expect(toDate.body.expires_at).toBe(target);

    const never = await api.call('POST', `/api/keys/${created.body.id}/extend`, { body: { expires_at: null } });
    expect(never.body.expires_at).toBeNull();
    const audit = await auditRows(created.body.id);
    expect(audit.filter((a) => a.action === 'key.extended')).toHaveLength(3);
  });

  it('reports an expired key as expired and revives it with extend', async () => {
    const created = await create(newUser());
    await api.deps.pool.query(`update api_keys set expires_at = now() - interval '1 minute' where id = $1`, [created.body.id]);
    expect((await api.call('GET', `/api/keys/by-id/${created.body.id}`)).body.status).toBe('expired');
    const r = await api.call('POST', `/api/keys/${created.body.id}/extend`, { body: { days: 7 } });
    expect(r.body.status).toBe('active');
  });

  it('rotates: a new secret once, the old one accepted until the grace end', async () => {
    const created = await create(newUser());
    const r = await api.call('POST', `/api/keys/${created.body.id}/rotate`, { body: { grace_seconds: 600 } });
    expect(r.status).toBe(200);
    plaintexts.push(r.body.key);
    expect(r.body.key).not.toBe(created.body.key);
    expect(r.body.id).toBe(created.body.id);
    expect(r.body.key.startsWith(r.body.key_prefix)).toBe(true);
    const graceEnd = new Date(r.body.previous_key_expires_at).getTime() - Date.now();
    expect(graceEnd).toBeGreaterThan(590_000);
    expect(graceEnd).toBeLessThanOrEqual(600_000);
    await expectKeyChanged(created.body.id);

    const oldMatch = await api.deps.keyStore.findByHash(api.deps.hasher.candidates(created.body.key));
    expect(oldMatch?.matched).toBe('previous');
    const newMatch = await api.deps.keyStore.findByHash(api.deps.hasher.candidates(r.body.key));
    expect(newMatch?.matched).toBe('current');

    // Default grace is ROTATION_GRACE_SECONDS (3600 here); grace 0 kills the old secret at once.
    const again = await api.call('POST', `/api/keys/${created.body.id}/rotate`);
    plaintexts.push(again.body.key);
    expect(new Date(again.body.previous_key_expires_at).getTime() - Date.now()).toBeGreaterThan(3_590_000);
    expect(await api.deps.keyStore.findByHash(api.deps.hasher.candidates(created.body.key))).toBeNull();
    const hard = await api.call('POST', `/api/keys/${created.body.id}/rotate`, { body: { grace_seconds: 0 } });
    plaintexts.push(hard.body.key);
    expect(hard.body.previous_key_expires_at).toBeNull();
    expect(await api.deps.keyStore.findByHash(api.deps.hasher.candidates(again.body.key))).toBeNull();
    const audit = (await auditRows(created.body.id)).filter((a) => a.action === 'key.rotated');
    expect(audit.map((a) => a.details.grace_seconds)).toEqual([600, 3600, 0]);
  });

  it('lists permission sets: built-ins and configured ones', async () => {
    const r = await api.call('GET', '/api/permission-sets');
    expect(r.status).toBe(200);
    expect(r.body.default).toBe('full_access');
    expect(r.body.data).toEqual(
      expect.arrayContaining([
        { name: 'read_only', scopes: ['read'], builtin: true },
        { name: 'full_access', scopes: ['*'], builtin: true },
        { name: 'training_pipeline', scopes: ['read', 'write:/training/'], builtin: false },
      ]),
    );
  });

  it('creates with scopes only (no permission set), with a permission set, and rejects an unknown set', async () => {
    const scoped = await create(newUser(), { scopes: ['read', 'write:/uploads/'] });
    expect(scoped.body).toMatchObject({ permission_set: null, scopes: ['read', 'write:/uploads/'], effective_scopes: ['read', 'write:/uploads/'] });
    const ro = await create(newUser(), { permission_set: 'read_only' });
    expect(ro.body.effective_scopes).toEqual(['read']);
    const before = await tableCounts(api.deps);
    const bad = await create(newUser(), { permission_set: 'no_such_set' });
    expect(bad.status).toBe(422);
    expect(bad.body.error).toBe('unknown_permission_set');
    expect(await tableCounts(api.deps)).toEqual(before);
  });
});

describe('listing: pagination and filters', () => {
  const user = `pager${Date.now()}`;
  const ids: string[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 5; i++) ids.push((await create(user, { name: `k${i}` })).body.id);
    await api.call('POST', `/api/keys/${ids[0]}/revoke`, { body: { reason: 'test' } });
    await api.call('POST', `/api/keys/${ids[1]}/extend`, { body: { days: 3 } });
    await api.call('POST', `/api/keys/${ids[2]}/extend`, { body: { days: 40 } });
  });

  it('pages newest first with a cursor, no key twice, none missed', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const r = await api.call('GET', `/api/keys/${user}${q}`);
      expect(r.status).toBe(200);
      seen.push(...r.body.data.map((k: { id: string }) => k.id));
      expect(r.body.has_more).toBe(r.body.next_cursor !== null);
      cursor = r.body.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());
  });

  it('filters by active and expiring_within_days', async () => {
    const active = await api.call('GET', `/api/keys/${user}?active=true`);
    expect(active.body.data.map((k: { id: string }) => k.id).sort()).toEqual(ids.slice(1).sort());
    const inactive = await api.call('GET', `/api/keys/${user}?active=false`);
    expect(inactive.body.data.map((k: { id: string }) => k.id)).toEqual([ids[0]]);
    const soon = await api.call('GET', `/api/keys/${user}?expiring_within_days=7`);
    expect(soon.body.data.map((k: { id: string }) => k.id)).toEqual([ids[1]]);
  });

  it('lists across users for an admin, filtered by user_id', async () => {
    const all = await api.call('GET', '/api/keys?limit=100');
    expect(new Set(all.body.data.map((k: { user_id: string }) => k.user_id)).size).toBeGreaterThan(1);
    const one = await api.call('GET', `/api/keys?user_id=${user}&active=true&expiring_within_days=60`);
    expect(one.body.data.map((k: { id: string }) => k.id).sort()).toEqual([ids[1], ids[2]].sort());
  });

  it('rejects a bad cursor, limit or filter with 400', async () => {
    for (const q of ['cursor=bm9wZQ', 'limit=0', 'limit=101', 'active=yes', 'expiring_within_days=-1', 'colour=blue']) {
      const r = await api.call('GET', `/api/keys/${user}?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error).toBe('invalid_request');
    }
  });
});

describe('authentication', () => {
  it('refuses a call without a credential: 401, WWW-Authenticate, JSON error', async () => {
    const r = await api.call('GET', '/api/keys/user123', { token: null });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="tollgate"');
    expect(r.body).toEqual({ error: 'missing_credential', message: expect.any(String), request_id: expect.any(String) });
  });

  it('refuses a wrong token, a malformed header, and a corrupted key with 401', async () => {
    for (const headers of [
      { authorization: 'Bearer not-the-admin-token-at-all' },
      { authorization: 'Basic dXNlcjpwYXNz' },
      { authorization: `Bearer ${TEST_ADMIN_TOKEN}x` },
      { authorization: `Bearer ${corruptChecksum(plaintexts[0]!)}` },
    ]) {
      const r = await api.call('GET', '/api/keys/user123', { token: null, headers });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="tollgate"/);
      expect(Object.keys(r.body).sort()).toEqual(['error', 'message', 'request_id']);
    }
  });

  it('checks the credential before the body: no validation details for strangers', async () => {
    const r = await api.call('POST', '/api/keys', { token: null, rawBody: '{not json' });
    expect(r.status).toBe(401);
  });

  it('accepts every configured admin token (rotation: old and new both work)', async () => {
    for (const token of [TEST_ADMIN_TOKEN, SECOND_ADMIN_TOKEN]) {
      const r = await api.call('GET', '/api/permission-sets', { token });
      expect(r.status).toBe(200);
    }
  });

  describe('owner keys (keys:manage)', () => {
    const alice = `alice${Date.now()}`;
    const bob = `bob${Date.now()}`;
    let aliceManager: string;
    let aliceKeyId: string;
    let bobKeyId: string;

    beforeAll(async () => {
      aliceManager = (await create(alice, { name: 'alice manager', scopes: ['keys:manage', 'read', 'write'] })).body.key;
      aliceKeyId = (await create(alice, { name: 'alice app', scopes: ['read'] })).body.id;
      bobKeyId = (await create(bob, { name: 'bob app' })).body.id;
    });

    it('a keys:manage key manages its own user’s keys', async () => {
      const list = await api.call('GET', `/api/keys/${alice}`, { token: aliceManager });
      expect(list.status).toBe(200);
      expect(list.body.data.map((k: { id: string }) => k.id)).toContain(aliceKeyId);
      const created = await create(alice, { name: 'made by owner', scopes: ['read'] }, aliceManager);
      expect(created.status).toBe(201);
      expect(created.body.created_by).toMatch(/^key:key_/);
      const patched = await api.call('PATCH', `/api/keys/${aliceKeyId}`, { token: aliceManager, body: { name: 'renamed by owner' } });
      expect(patched.status).toBe(200);
      const audit = await auditRows(aliceKeyId);
      expect(audit.at(-1).actor).toMatch(/^key:key_[0-9A-Za-z]{20}$/);
    });

    it('never sees or touches another user’s keys: 404 by id, 403 by user', async () => {
      const before = await tableCounts(api.deps);
      expect((await api.call('GET', `/api/keys/by-id/${bobKeyId}`, { token: aliceManager })).status).toBe(404);
      for (const [method, path, body] of [
        ['PATCH', '', { name: 'x' }],
        ['POST', '/revoke', {}],
        ['POST', '/extend', { days: 1 }],
        ['POST', '/rotate', {}],
        ['DELETE', '', undefined],
      ] as const) {
        const r = await api.call(method, `/api/keys/${bobKeyId}${path}`, { token: aliceManager, body });
        expect(r.status, `${method} ${path}`).toBe(404);
        expect(r.body.error).toBe('not_found');
      }
      expect((await api.call('GET', `/api/keys/${bob}`, { token: aliceManager })).status).toBe(403);
      expect((await api.call('GET', `/api/keys?user_id=${bob}`, { token: aliceManager })).status).toBe(403);
      expect((await create(bob, {}, aliceManager)).status).toBe(403);
      expect(await tableCounts(api.deps)).toEqual(before);

      // The cross-user list shows an owner only its own keys.
      const all = await api.call('GET', '/api/keys?limit=100', { token: aliceManager });
      expect(new Set(all.body.data.map((k: { user_id: string }) => k.user_id))).toEqual(new Set([alice]));

      // And the other way round: Bob's manager cannot reach Alice's keys.
      const bobManager = (await create(bob, { name: 'bob manager', permission_set: 'key_admin' })).body.key;
      expect((await api.call('GET', `/api/keys/by-id/${aliceKeyId}`, { token: bobManager })).status).toBe(404);
      expect((await api.call('GET', `/api/keys/by-id/${bobKeyId}`, { token: bobManager })).status).toBe(200);
    });

    it('cannot mint a key with scopes beyond its own', async () => {
      const before = await tableCounts(api.deps);
      const r = await create(alice, { permission_set: 'full_access' }, aliceManager);
      expect(r.status).toBe(403);
      expect(r.body.error).toBe('scope_escalation');
      const widened = await api.call('PATCH', `/api/keys/${aliceKeyId}`, { token: aliceManager, body: { scopes: ['*'] } });
      expect(widened.status).toBe(403);
      expect(await tableCounts(api.deps)).toEqual(before);
    });

    it('cannot grant a service_route scope, even holding "*" and that scope; an admin can', async () => {
      const grant = 'service_route:/captionacc/prefect/api/';
      const root = (await create(alice, { name: 'alice root', scopes: ['keys:manage', '*', grant] })).body.key;
      const before = await tableCounts(api.deps);
      const r = await create(alice, { scopes: ['read', grant] }, root);
      expect(r.status).toBe(403);
      expect(r.body.error).toBe('scope_escalation');
      expect(r.body.message).toContain(grant);
      expect(await tableCounts(api.deps)).toEqual(before);
      const byAdmin = await create(alice, { scopes: ['read', grant] });
      expect(byAdmin.status).toBe(201);
      expect(byAdmin.body.scopes).toEqual(['read', grant]);
      // A scope the key already has is not a grant: its owner may still rename it, and may drop it.
      const renamed = await api.call('PATCH', `/api/keys/${byAdmin.body.id}`, { token: root, body: { name: 'renamed by its owner' } });
      expect(renamed.status).toBe(200);
      expect(renamed.body.scopes).toEqual(['read', grant]);
      const dropped = await api.call('PATCH', `/api/keys/${byAdmin.body.id}`, { token: root, body: { scopes: ['read'] } });
      expect(dropped.status).toBe(200);
      expect(dropped.body.scopes).toEqual(['read']);
      const regranted = await api.call('PATCH', `/api/keys/${byAdmin.body.id}`, { token: root, body: { scopes: ['read', grant] } });
      expect(regranted.status).toBe(403);
    });

    it('a key without keys:manage (even full_access "*") gets 403; a revoked manager gets 401', async () => {
      const plain = (await create(alice, { permission_set: 'full_access' })).body.key;
      const r = await api.call('GET', `/api/keys/${alice}`, { token: plain });
      expect(r.status).toBe(403);
      expect(r.body.error).toBe('insufficient_scope');
      // RFC 6750 §3.1: a 403 for scope names the scope that is missing, as the gateway's does.
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="tollgate", error="insufficient_scope", scope="keys:manage"');

      const temp = await create(alice, { scopes: ['keys:manage'] });
      await api.call('POST', `/api/keys/${temp.body.id}/revoke`);
      const revoked = await api.call('GET', `/api/keys/${alice}`, { token: temp.body.key });
      expect(revoked.status).toBe(401);
      expect(revoked.body.error).toBe('key_revoked');
    });
  });
});

describe('validation: clear 4xx JSON and nothing written', () => {
  const cases: [string, string, string, CallBody][] = [
    ['unknown field', 'POST', '/api/keys', { body: { ...seedBody('user123'), colour: 'blue' } }],
    ['missing name', 'POST', '/api/keys', { body: { user_id: 'user123' } }],
    ['rate limit out of range (high)', 'POST', '/api/keys', { body: seedBody('user123', { rate_limit_per_minute: 1_000_001 }) }],
    ['rate limit out of range (zero)', 'POST', '/api/keys', { body: seedBody('user123', { rate_limit_per_day: 0 }) }],
    ['rate limit not an integer', 'POST', '/api/keys', { body: seedBody('user123', { rate_limit_per_minute: 1.5 }) }],
    ['string where a number goes', 'POST', '/api/keys', { body: seedBody('user123', { rate_limit_per_minute: '100' }) }],
    ['bad user id', 'POST', '/api/keys', { body: seedBody('user 123/..') }],
    ['bad scope', 'POST', '/api/keys', { body: seedBody('user123', { scopes: ['read write'] }) }],
    ['service_route scope without a path', 'POST', '/api/keys', { body: seedBody('user123', { scopes: ['service_route:captionacc'] }) }],
    ['bad JSON', 'POST', '/api/keys', { rawBody: '{"user_id": "user123",' }],
    ['JSON array body', 'POST', '/api/keys', { rawBody: '[]' }],
    ['JSON null body', 'POST', '/api/keys/key_00000000000000000000/revoke', { rawBody: 'null' }],
    ['empty JSON body on create', 'POST', '/api/keys', { rawBody: '', headers: { 'content-type': 'application/json' } }],
    ['bad key id', 'POST', '/api/keys/not-a-key-id/extend', { body: { days: 1 } }],
    ['bad key id (get)', 'GET', '/api/keys/by-id/key_short', {}],
    ['empty patch', 'PATCH', '/api/keys/key_00000000000000000000', { body: {} }],
    ['extend with both forms', 'POST', '/api/keys/key_00000000000000000000/extend', { body: { days: 1, expires_at: '2999-01-01T00:00:00Z' } }],
    ['rotate grace out of range', 'POST', '/api/keys/key_00000000000000000000/rotate', { body: { grace_seconds: -1 } }],
    ['prototype pollution', 'POST', '/api/keys', { rawBody: '{"user_id":"u","name":"n","__proto__":{"x":1}}' }],
  ];
  type CallBody = { body?: unknown; rawBody?: string; headers?: Record<string, string> };

  for (const [label, method, path, options] of cases) {
    it(`${label} → 400 {error, message, details?}`, async () => {
      const before = await tableCounts(api.deps);
      const r = await api.call(method, path, options);
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toMatch(/application\/json/);
      expect(typeof r.body.error).toBe('string');
      expect(typeof r.body.message).toBe('string');
      expect(Object.keys(r.body).every((k) => ['error', 'message', 'details', 'request_id'].includes(k))).toBe(true);
      expect(await tableCounts(api.deps)).toEqual(before);
    });
  }

  it('names the offending field in details', async () => {
    const r = await create('user123', { colour: 'blue', rate_limit_per_minute: 0 });
    expect(r.body.error).toBe('invalid_request');
    const fields = r.body.details.map((d: { field: string }) => d.field);
    expect(fields).toContain('body.rate_limit_per_minute');
    expect(JSON.stringify(r.body.details)).toContain('colour');
  });

  it('expiry in the past and both expiry forms are 400 invalid_request naming expires_at, and write nothing', async () => {
    const before = await tableCounts(api.deps);
    for (const body of [
      { expires_at: '2001-01-01T00:00:00Z' },
      { expires_at: '2999-01-01T00:00:00Z', expires_in_days: 3 },
      { expires_at: null, expires_in_days: 3 },
    ]) {
      const res = await create('user123', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body).toMatchObject({ error: 'invalid_request', details: [expect.objectContaining({ field: 'body.expires_at' })] });
    }
    expect(await tableCounts(api.deps)).toEqual(before);
    const { id } = (await create('user123', {})).body;
    const mid = await tableCounts(api.deps);
    const extend = await api.call('POST', `/api/keys/${id}/extend`, { body: { expires_at: '2001-01-01T00:00:00Z' } });
    expect(extend.status).toBe(400);
    expect(extend.body.details[0].field).toBe('body.expires_at');
    expect(await tableCounts(api.deps)).toEqual(mid);
  });

  it('an empty body with Content-Type: application/json means no body (curl -X DELETE -H …)', async () => {
    const created = await create(newUser());
    const r = await api.call('DELETE', `/api/keys/${created.body.id}`, { rawBody: '', headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(200);
    const revoke = await api.call('POST', `/api/keys/${(await create(newUser())).body.id}/revoke`, {
      rawBody: '',
      headers: { 'content-type': 'application/json' },
    });
    expect(revoke.status).toBe(200);
  });

  it('a non-JSON content type is 415, an unknown route 404, both as JSON', async () => {
    const text = await api.call('POST', '/api/keys', { rawBody: 'user_id=x', headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(415);
    expect(text.body.error).toBe('unsupported_media_type');
    const none = await api.call('GET', '/api/nothing-here');
    expect(none.status).toBe(404);
    expect(none.body).toEqual({ error: 'not_found', message: expect.any(String), request_id: expect.any(String) });
  });
});

describe('Idempotency-Key', () => {
  it('a retried create returns the same record (without the secret) and makes no second key', async () => {
    const user = newUser();
    const headers = { 'idempotency-key': `create-${user}` };
    const first = await api.call('POST', '/api/keys', { body: seedBody(user), headers });
    plaintexts.push(first.body.key);
    expect(first.status).toBe(201);
    const second = await api.call('POST', '/api/keys', { body: seedBody(user), headers });
    expect(second.status).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    const { key: _k, ...record } = first.body;
    expect(second.body).toEqual(record);
    expect((await api.call('GET', `/api/keys/${user}`)).body.data).toHaveLength(1);
    // The stored response holds no plaintext.
    const stored = await api.deps.pool.query('select response::text as r from idempotency_keys where key = $1', [`create-${user}`]);
    expect(stored.rows[0].r).not.toContain(first.body.key);
  });

  it('the same key with a different body is refused with 422 and writes nothing', async () => {
    const user = newUser();
    const headers = { 'idempotency-key': `reuse-${user}` };
    await create(user, {}, undefined);
    const first = await api.call('POST', '/api/keys', { body: seedBody(user), headers });
    plaintexts.push(first.body.key);
    const before = await tableCounts(api.deps);
    const other = await api.call('POST', '/api/keys', { body: seedBody(user, { name: 'other' }), headers });
    expect(other.status).toBe(422);
    expect(other.body.error).toBe('idempotency_key_reused');
    expect(await tableCounts(api.deps)).toEqual(before);
  });

  it('concurrent retries create exactly one key', async () => {
    const user = newUser();
    const headers = { 'idempotency-key': `race-${user}` };
    const answers = await Promise.all(Array.from({ length: 5 }, () => api.call('POST', '/api/keys', { body: seedBody(user), headers })));
    for (const a of answers) if (a.body.key) plaintexts.push(a.body.key);
    expect(answers.map((a) => a.status)).toEqual([201, 201, 201, 201, 201]);
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    expect(answers.filter((a) => a.body.key)).toHaveLength(1);
    expect((await api.call('GET', `/api/keys/${user}`)).body.data).toHaveLength(1);
  });

  it('a retried rotate rotates once', async () => {
    const created = await create(newUser());
    const headers = { 'idempotency-key': `rotate-${created.body.id}` };
    const first = await api.call('POST', `/api/keys/${created.body.id}/rotate`, { body: {}, headers });
    plaintexts.push(first.body.key);
    const second = await api.call('POST', `/api/keys/${created.body.id}/rotate`, { body: {}, headers });
    expect(second.body.key).toBeUndefined();
    expect(second.body.key_prefix).toBe(first.body.key_prefix);
    expect((await auditRows(created.body.id)).filter((a) => a.action === 'key.rotated')).toHaveLength(1);
  });
});

describe('secrets', () => {
  it('no endpoint ever returns a plaintext key after creation', async () => {
    expect(plaintexts.length).toBeGreaterThan(10);
    const all = await api.call('GET', '/api/keys?limit=100');
    const pages = [all.text];
    let cursor = all.body.next_cursor;
    while (cursor) {
      const next = await api.call('GET', `/api/keys?limit=100&cursor=${cursor}`);
      pages.push(next.text);
      cursor = next.body.next_cursor;
    }
    const ids: string[] = pages.flatMap((p) => JSON.parse(p).data.map((k: { id: string }) => k.id));
    const users = new Set<string>(pages.flatMap((p) => JSON.parse(p).data.map((k: { user_id: string }) => k.user_id)));
    for (const id of ids) pages.push((await api.call('GET', `/api/keys/by-id/${id}`)).text);
    for (const u of users) pages.push((await api.call('GET', `/api/keys/${u}`)).text);
    pages.push((await api.call('GET', '/api/permission-sets')).text, (await api.call('GET', '/openapi.json')).text);
    pages.push((await api.call('GET', '/metrics')).text, (await api.call('GET', '/health')).text);
    const everything = pages.join('\n');
    for (const p of plaintexts) expect(everything).not.toContain(p);
    expect(everything).not.toMatch(/key_hash|previous_key_hash/);
  });

  it('audit rows and logs carry no secret', async () => {
    const audit = await api.deps.pool.query('select actor, action, details::text as d from audit_log');
    const logs = api.lines.join('\n');
    const stored = audit.rows.map((r) => `${r.actor} ${r.action} ${r.d}`).join('\n');
    for (const p of plaintexts) {
      expect(stored).not.toContain(p);
      expect(logs).not.toContain(p);
    }
    for (const t of [TEST_ADMIN_TOKEN, SECOND_ADMIN_TOKEN]) {
      expect(stored).not.toContain(t);
      expect(logs).not.toContain(t);
    }
    expect(logs).toContain('management call');
  });
});
