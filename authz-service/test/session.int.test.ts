import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sessionTokenHash } from '../src/stores/session-store.js';
import { startTestApi, type ApiAnswer, type TestApi } from './api-helpers.js';
import { createKey, TEST_ADMIN_TOKEN } from './helpers.js';
import type { AuthzService } from '../src/app.js';

// Console sessions (docs/management-api.md, "Console sessions"): the cookie's flags, storage as a
// hash only, idle and absolute expiry, sign-out, owner sessions ending with their key, and the
// sign-in failure limiter. Expiry is shown by moving the stored times back, not by waiting.
const infra = inject('infra');
let api: TestApi;
const FAILURES_PER_MINUTE = 3;
const IDLE_MS = 600_000;

beforeAll(async () => {
  api = await startTestApi(infra, 'sessions', {
    SESSION_IDLE_TIMEOUT_MS: String(IDLE_MS),
    SESSION_MAX_AGE_MS: String(3_600_000),
    SESSION_SIGNIN_FAILURES_PER_MINUTE: String(FAILURES_PER_MINUTE),
  });
});

afterAll(async () => {
  await api?.stop();
});

const asService = () => ({ deps: api.deps }) as unknown as AuthzService;

async function signIn(token: string, headers: Record<string, string> = {}): Promise<{ r: ApiAnswer; cookie: string; value: string }> {
  const r = await api.call('POST', '/api/session', { token: null, body: { token }, headers });
  expect(r.status, r.text).toBe(201);
  const cookie = r.headers.get('set-cookie')!.split(';')[0]!;
  return { r, cookie, value: cookie.slice('tollgate_session='.length) };
}

const withCookie = (cookie: string, csrf?: string) => ({ token: null, headers: { cookie, ...(csrf ? { 'x-csrf-token': csrf } : {}) } });

describe('POST /api/session', () => {
  it('sets an HttpOnly, SameSite=Strict cookie for the whole site, Secure only over HTTPS', async () => {
    const plain = await signIn(TEST_ADMIN_TOKEN);
    const flags = plain.r.headers
      .get('set-cookie')!
      .split(';')
      .map((p) => p.trim());
    expect(flags).toEqual(expect.arrayContaining(['HttpOnly', 'SameSite=Strict', 'Path=/']));
    expect(flags).not.toContain('Secure');
    expect(plain.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const https = await signIn(TEST_ADMIN_TOKEN, { 'x-forwarded-proto': 'https' });
    expect(
      https.r.headers
        .get('set-cookie')!
        .split(';')
        .map((p) => p.trim()),
    ).toContain('Secure');
    expect(plain.r.body).toMatchObject({ kind: 'admin', user_id: null, scopes: ['*'], csrf_token: expect.any(String) });
    expect(Date.parse(plain.r.body.expires_at)).toBeGreaterThan(Date.parse(plain.r.body.idle_expires_at));
  });

  it('stores only the hash of the cookie, never its value', async () => {
    const { value } = await signIn(TEST_ADMIN_TOKEN);
    const rows = (await api.deps.pool.query('select * from console_sessions')).rows;
    expect(JSON.stringify(rows)).not.toContain(value);
    expect(rows.map((r) => r.token_hash)).toContain(sessionTokenHash(value));
  });

  it('signs an owner in as its key: user, scopes, and only its own keys', async () => {
    const owner = await createKey(asService(), { userId: 'sess-alice', permissionSet: null, scopes: ['keys:manage', 'read'] });
    const { r, cookie } = await signIn(owner.plaintext);
    expect(r.body).toMatchObject({ kind: 'owner', user_id: 'sess-alice', scopes: ['keys:manage', 'read'] });
    expect((await api.call('GET', '/api/keys/sess-alice', withCookie(cookie))).status).toBe(200);
    expect((await api.call('GET', '/api/keys/sess-bob', withCookie(cookie))).body.error).toBe('forbidden');
  });

  it('answers 401 invalid_credentials for a wrong token or a key without keys:manage', async () => {
    const plainKey = await createKey(asService(), { userId: 'sess-carol', permissionSet: 'full_access' });
    // Two failures: under this file's limit of three a minute.
    for (const token of ['not-the-admin-token-at-all', plainKey.plaintext]) {
      const r = await api.call('POST', '/api/session', { token: null, body: { token } });
      expect(r.status).toBe(401);
      expect(r.body.error).toBe('invalid_credentials');
      expect(r.headers.get('set-cookie')).toBeNull();
    }
  });
});

describe('the session cookie as a credential', () => {
  it('GET /api/session answers the session again with the same csrf_token', async () => {
    const { r, cookie } = await signIn(TEST_ADMIN_TOKEN);
    const again = await api.call('GET', '/api/session', withCookie(cookie));
    expect(again.status).toBe(200);
    expect(again.body.csrf_token).toBe(r.body.csrf_token);
    expect((await api.call('GET', '/api/session', { token: null })).body.error).toBe('invalid_session');
    expect((await api.call('GET', '/api/session', withCookie('tollgate_session=made-up'))).body.error).toBe('invalid_session');
  });

  it('needs X-CSRF-Token, equal to the session’s, on state-changing calls; bearer calls are unchanged', async () => {
    const { r, cookie } = await signIn(TEST_ADMIN_TOKEN);
    const body = { user_id: 'sess-dave', name: 'via console' };
    const none = await api.call('POST', '/api/keys', { ...withCookie(cookie), body });
    expect([none.status, none.body.error]).toEqual([403, 'csrf_failed']);
    const wrong = await api.call('POST', '/api/keys', { ...withCookie(cookie, 'x'.repeat(43)), body });
    expect([wrong.status, wrong.body.error]).toEqual([403, 'csrf_failed']);
    expect((await api.call('GET', '/api/keys/sess-dave', { token: null })).status).toBe(401);
    expect((await api.call('GET', '/api/keys/sess-dave')).body.data).toEqual([]);
    expect((await api.call('POST', '/api/keys', { ...withCookie(cookie, r.body.csrf_token), body })).status).toBe(201);
    // A bearer credential beside the cookie is what counts, and needs no CSRF header.
    expect((await api.call('POST', '/api/keys', { headers: { cookie }, body })).status).toBe(201);
  });

  it('ends after SESSION_IDLE_TIMEOUT_MS unused, and a use restarts the idle clock', async () => {
    const { cookie, value } = await signIn(TEST_ADMIN_TOKEN);
    const back = (ms: number) =>
      api.deps.pool.query(`update console_sessions set last_seen_at = now() - make_interval(secs => $2) where token_hash = $1`, [
        sessionTokenHash(value),
        ms / 1000,
      ]);
    await back(IDLE_MS - 60_000);
    expect((await api.call('GET', '/api/session', withCookie(cookie))).status).toBe(200);
    await back(IDLE_MS - 60_000);
    expect((await api.call('GET', '/api/keys', withCookie(cookie))).status).toBe(200);
    await back(IDLE_MS + 1000);
    expect((await api.call('GET', '/api/keys', withCookie(cookie))).body.error).toBe('invalid_session');
    expect((await api.deps.pool.query('select 1 from console_sessions where token_hash = $1', [sessionTokenHash(value)])).rowCount).toBe(0);
  });

  it('ends at SESSION_MAX_AGE_MS however busy', async () => {
    const { cookie, value } = await signIn(TEST_ADMIN_TOKEN);
    await api.deps.pool.query(`update console_sessions set expires_at = now() - interval '1 second' where token_hash = $1`, [sessionTokenHash(value)]);
    expect((await api.call('GET', '/api/session', withCookie(cookie))).status).toBe(401);
  });

  it('DELETE /api/session signs out: the row is gone and the cookie cleared', async () => {
    const { r, cookie, value } = await signIn(TEST_ADMIN_TOKEN);
    expect((await api.call('DELETE', '/api/session', withCookie(cookie))).body.error).toBe('csrf_failed');
    const out = await api.call('DELETE', '/api/session', withCookie(cookie, r.body.csrf_token));
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/^tollgate_session=; .*Max-Age=0/);
    expect((await api.deps.pool.query('select 1 from console_sessions where token_hash = $1', [sessionTokenHash(value)])).rowCount).toBe(0);
    expect((await api.call('GET', '/api/keys', withCookie(cookie))).status).toBe(401);
  });

  it('an owner key revoked after sign-in ends its sessions', async () => {
    const owner = await createKey(asService(), { userId: 'sess-erin', permissionSet: null, scopes: ['keys:manage'] });
    const { cookie } = await signIn(owner.plaintext);
    await signIn(owner.plaintext);
    expect((await api.call('GET', '/api/keys/sess-erin', withCookie(cookie))).status).toBe(200);
    expect((await api.call('POST', `/api/keys/${owner.key.id}/revoke`, { body: {} })).status).toBe(200);
    expect((await api.call('GET', '/api/keys/sess-erin', withCookie(cookie))).body.error).toBe('invalid_session');
    expect((await api.deps.pool.query('select 1 from console_sessions where key_id = $1', [owner.key.id])).rowCount).toBe(0);
  });
});

describe('failed sign-ins', () => {
  it(`are slowed down per address: after ${FAILURES_PER_MINUTE} a minute, 429 with Retry-After, even for a right token`, async () => {
    const limited = await startTestApi(infra, 'sessions-limit', { SESSION_SIGNIN_FAILURES_PER_MINUTE: String(FAILURES_PER_MINUTE) });
    try {
      for (let i = 0; i < FAILURES_PER_MINUTE; i++) {
        expect((await limited.call('POST', '/api/session', { token: null, body: { token: `wrong-token-${i}-padding` } })).status).toBe(401);
      }
      for (const token of ['wrong-token-again-padding', TEST_ADMIN_TOKEN]) {
        const r = await limited.call('POST', '/api/session', { token: null, body: { token } });
        expect([r.status, r.body.error]).toEqual([429, 'too_many_failed_attempts']);
        expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect(Number(r.headers.get('retry-after'))).toBeLessThanOrEqual(60);
      }
      // Bearer calls are not sign-ins: the limiter does not touch them.
      expect((await limited.call('GET', '/api/keys')).status).toBe(200);
    } finally {
      await limited.stop();
    }
  });
});
