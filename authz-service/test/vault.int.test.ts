import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TestStack, type RunningEnvoy } from '@tollgate/devstack';
import { createKey, inWaves, sleep, startAuthzStack, startTestAuthz, type TestAuthz, type TestEnv } from './helpers.js';

// Seeds 000 and 002 at the gateway: vault injection, bring-your-own-key, isolation.
const infra = inject('infra');
const MK_OLD = `mk1:${randomBytes(32).toString('base64')}`;
const MK_NEW = `mk2:${randomBytes(32).toString('base64')}`;
const ROUTES = JSON.stringify([
  { prefix: '/echo/rooms/', default_provider: 'daily' },
  { prefix: '/echo/optional/', required: false },
]);

let env: TestEnv;
let authz: TestAuthz;
let envoy: RunningEnvoy;
const stack = new TestStack();

beforeAll(async () => {
  let front;
  ({ env, authz, front } = await startAuthzStack(stack, infra, 'vault', { config: { VAULT_MASTER_KEYS: MK_OLD, PROVIDER_ROUTES: ROUTES }, envoy: true }));
  envoy = front.envoy;
});

afterAll(() => stack.stop());

const call = async (path: string, headers: Record<string, string>) => {
  const res = await fetch(`${envoy.url}${path}`, { headers });
  return { status: res.status, body: await res.json() };
};

describe('provider-key vault', () => {
  it('stores only ciphertext and returns only metadata', async () => {
    const secret = `daily_${randomBytes(12).toString('hex')}`;
    const { meta, created } = await authz.deps.vault.set('meta-user', 'daily', secret);
    expect(created).toBe(true);
    expect(JSON.stringify(meta)).not.toContain(secret);
    expect(Object.keys(meta).sort()).toEqual(['createdAt', 'fingerprint', 'masterKeyId', 'provider', 'updatedAt', 'userId']);
    const rows = await authz.deps.pool.query("select encode(wrapped_dek,'escape') as w, encode(ciphertext,'escape') as c, fingerprint from provider_keys");
    expect(JSON.stringify(rows.rows)).not.toContain(secret);
  });

  it('injects the caller’s stored credential; each user gets only their own, under concurrent load', async () => {
    const alice = await createKey(authz, { userId: 'alice' });
    const bob = await createKey(authz, { userId: 'bob' });
    const sa = `daily_alice_${randomBytes(8).toString('hex')}`;
    const sb = `daily_bob_${randomBytes(8).toString('hex')}`;
    await authz.deps.vault.set('alice', 'daily', sa);
    await authz.deps.vault.set('bob', 'daily', sb);
    const whoOf = (i: number) => (i % 2 ? 'alice' : 'bob');
    const answers = await inWaves(200, 20, async (i) => {
      const res = await fetch(`${envoy.url}/echo/rooms/create`, { headers: { authorization: `Bearer ${(whoOf(i) === 'alice' ? alice : bob).plaintext}` } });
      const text = await res.text();
      return { status: res.status, text, body: text ? JSON.parse(text) : null };
    });
    for (const [i, r] of answers.entries()) {
      const who = whoOf(i);
      expect(r.status, r.text).toBe(200);
      expect(r.body.headers['x-provider']).toBe('daily');
      expect(r.body.headers['x-provider-auth']).toBe(`Bearer ${who === 'alice' ? sa : sb}`);
      expect(r.body.headers['x-user-id']).toBe(who);
    }
  });

  it('X-Provider picks the provider, case-insensitively; a missing credential is a 400 naming it', async () => {
    const k = await createKey(authz, { userId: 'carol' });
    const zoom = `zoom_${randomBytes(8).toString('hex')}`;
    await authz.deps.vault.set('carol', 'zoom', zoom);
    const ok = await call('/echo/rooms/x', { authorization: `Bearer ${k.plaintext}`, 'x-provider': 'ZOOM' });
    expect(ok.status).toBe(200);
    expect(ok.body.headers['x-provider-auth']).toBe(`Bearer ${zoom}`);
    expect(ok.body.headers['x-provider']).toBe('zoom');
    const missing = await call('/echo/rooms/x', { authorization: `Bearer ${k.plaintext}` });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toBe('provider_credential_missing');
    expect(missing.body.message).toContain('"daily"');
    const bad = await call('/echo/rooms/x', { authorization: `Bearer ${k.plaintext}`, 'x-provider': 'no such!' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('invalid_provider');
    // Off provider routes, nothing is injected and nothing is required.
    const plain = await call('/echo/other', { authorization: `Bearer ${k.plaintext}` });
    expect(plain.status).toBe(200);
    expect(plain.body.headers['x-provider-auth']).toBeUndefined();
    const optional = await call('/echo/optional/x', { authorization: `Bearer ${k.plaintext}`, 'x-provider': 'daily' });
    expect(optional.status).toBe(200);
  });

  it('bring-your-own-key passes through untouched and takes precedence; a key can be barred from it', async () => {
    const k = await createKey(authz, { userId: 'dave' });
    await authz.deps.vault.set('dave', 'daily', 'daily_stored_value_1234');
    const own = 'daily_client_supplied_' + randomBytes(6).toString('hex');
    const r = await call('/echo/rooms/x', { authorization: `Bearer ${k.plaintext}`, 'x-provider-auth': `Bearer ${own}`, 'x-provider': 'Daily' });
    expect(r.status).toBe(200);
    expect(r.body.headers['x-provider-auth']).toBe(`Bearer ${own}`);
    expect(r.body.headers['x-provider']).toBe('daily');
    const raw = await call('/echo/rooms/x', { authorization: `Bearer ${k.plaintext}`, 'x-provider-auth': own });
    expect(raw.body.headers['x-provider-auth']).toBe(own);

    const barred = await createKey(authz, { userId: 'dave', metadata: { byok: false } });
    const denied = await call('/echo/rooms/x', { authorization: `Bearer ${barred.plaintext}`, 'x-provider-auth': own });
    expect(denied.status).toBe(403);
    expect(denied.body.error).toBe('byok_not_allowed');
    // Nothing the client brought was stored.
    const rows = await authz.deps.pool.query('select fingerprint from provider_keys where user_id = $1', ['dave']);
    expect(rows.rows).toHaveLength(1);
  });

  it('a changed credential is used within a second (cache invalidation)', async () => {
    const k = await createKey(authz, { userId: 'erin' });
    await authz.deps.vault.set('erin', 'daily', 'daily_first_value_000');
    expect((await call('/echo/rooms/x', { authorization: `Bearer ${k.plaintext}` })).body.headers['x-provider-auth']).toBe('Bearer daily_first_value_000');
    await authz.deps.vault.set('erin', 'daily', 'daily_second_value_111');
    const start = Date.now();
    let seen = '';
    while (Date.now() - start < 1000) {
      seen = (await call('/echo/rooms/x', { authorization: `Bearer ${k.plaintext}` })).body.headers['x-provider-auth'];
      if (seen === 'Bearer daily_second_value_111') break;
      await sleep(20);
    }
    expect(seen).toBe('Bearer daily_second_value_111');
  });

  it('a row copied to another user fails to decrypt and is not injected', async () => {
    const k = await createKey(authz, { userId: 'mallory' });
    await authz.deps.vault.set('victim', 'daily', 'daily_victim_secret_999');
    await authz.deps.pool.query(
      `insert into provider_keys (user_id, provider, master_key_id, wrapped_dek, ciphertext, fingerprint)
       select 'mallory', provider, master_key_id, wrapped_dek, ciphertext, fingerprint from provider_keys where user_id = 'victim'`,
    );
    const r = await call('/echo/rooms/x', { authorization: `Bearer ${k.plaintext}` });
    expect(r.status).toBe(503);
    expect(r.body.error).toBe('provider_credential_unreadable');
    expect(JSON.stringify(r.body)).not.toContain('daily_victim_secret_999');
  });

  it('rewrap moves every record to the new master key; old-key-only service cannot read them after', async () => {
    const secret = 'daily_rewrap_' + randomBytes(6).toString('hex');
    await authz.deps.vault.set('frank', 'daily', secret);
    const rotated = await startTestAuthz(env, { VAULT_MASTER_KEYS: `${MK_NEW},${MK_OLD}`, PROVIDER_ROUTES: ROUTES });
    try {
      const result = await rotated.deps.vault.rewrap();
      expect(result.failed).toBeGreaterThanOrEqual(1); // mallory's copied row cannot be rewrapped
      expect(result.rewrapped).toBeGreaterThanOrEqual(1);
      const left = await rotated.deps.pool.query("select count(*)::int as n from provider_keys where master_key_id <> 'mk2' and user_id <> 'mallory'");
      expect(left.rows[0].n).toBe(0);
      const newOnly = await startTestAuthz(env, { VAULT_MASTER_KEYS: MK_NEW });
      try {
        const rec = await newOnly.deps.vaultStore.get('frank', 'daily');
        expect(newOnly.deps.vault.envelope!.openSecret(rec!.sealed, 'frank', 'daily')).toBe(secret);
      } finally {
        await newOnly.stop();
      }
    } finally {
      await rotated.stop();
    }
  });

  it('never logs a provider secret', async () => {
    const k = await createKey(authz, { userId: 'gina' });
    const stored = 'daily_logcheck_' + randomBytes(6).toString('hex');
    const own = 'daily_own_logcheck_' + randomBytes(6).toString('hex');
    await authz.deps.vault.set('gina', 'daily', stored);
    await call('/echo/rooms/x', { authorization: `Bearer ${k.plaintext}` });
    await call('/echo/rooms/x', { authorization: `Bearer ${k.plaintext}`, 'x-provider-auth': own });
    await call('/echo/rooms/x', { authorization: `Bearer ${k.plaintext}`, 'x-provider-auth': own, 'x-provider': 'bad name' });
    const log = authz.lines.join('');
    expect(log).not.toContain(stored);
    expect(log).not.toContain(own);
  });
});
