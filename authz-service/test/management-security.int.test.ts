import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migrateBilling } from '@tollgate/usage-model';
import type { AuthzService } from '../src/app.js';
import type { ApiKey } from '../src/domain/api-key.js';
import { generateKey } from '../src/domain/key-format.js';
import { managementRoutes } from '../src/http/api.js';
import type { RouteSpec } from '../src/http/routes.js';
import { issueServiceToken } from '../src/tokens/token-service.js';
import { WebhookEndpointService } from '../src/webhooks/endpoint-service.js';
import { enqueueWebhook } from '../src/webhooks/outbox.js';
import { startTestApi, type ApiAnswer, type TestApi } from './api-helpers.js';
import { createKey, TEST_ADMIN_TOKEN } from './helpers.js';

// The management API's trust boundaries, route by route. The routes come from managementRoutes(),
// the list that registers them and builds /openapi.json, so a new route fails this file until it
// has a row in EXPECTATIONS. Every route is called with every kind of credential; each cell checks
// the status and error, and that a refused call changed nothing (keys, audit log, tokens, vault,
// idempotency records). Then the owner field policy (docs/management-api.md): each admin-only
// field an owner key tries answers 403 field_not_allowed naming it, and changes nothing.
const infra = inject('infra');
let api: TestApi;

const ALICE = 'sec-alice';
const BOB = 'sec-bob';
const DAY = 86_400_000;
const ROTATION_GRACE_SECONDS = 3600;

/** A fresh set of things to act on, made for each cell (a successful delete consumes them). */
interface World {
  /** One of Alice's keys, made by an admin, with operator-set limits, billing, expiry and byok. */
  keyId: string;
  jti: string;
  userId: string;
  provider: string;
  /** An operator credential (the managed phase): admin only, whatever the owner. */
  operatorCredentialId: string;
  /** An outbound webhook endpoint and one queued delivery to it: operator-only. */
  webhookEndpointId: string;
  webhookDeliveryId: string;
}

type Credential =
  | 'none'
  | 'malformed'
  | 'unknown'
  | 'no_scope'
  | 'revoked'
  | 'expired'
  | 'suspended'
  | 'admin'
  | 'owner_own'
  | 'owner_other'
  | CookieCredential;
/** The console session cookie (POST /api/session) made from the admin token or Alice's owner key; `_no_csrf` omits X-CSRF-Token. */
type CookieCredential = 'cookie_admin' | 'cookie_owner' | 'cookie_owner_no_csrf';
const CREDENTIALS: readonly Credential[] = [
  'none',
  'malformed',
  'unknown',
  'no_scope',
  'revoked',
  'expired',
  'suspended',
  'admin',
  'owner_own',
  'owner_other',
  'cookie_admin',
  'cookie_owner',
  'cookie_owner_no_csrf',
];
const COOKIE_SOURCE: Record<CookieCredential, 'admin' | 'owner_own'> = { cookie_admin: 'admin', cookie_owner: 'owner_own', cookie_owner_no_csrf: 'owner_own' };
const isCookie = (c: Credential): c is CookieCredential => c in COOKIE_SOURCE;

/** The same refusal for every route: authentication runs before anything else (routes.ts). */
const REFUSED_BEFORE_ROUTE: Record<Exclude<Credential, 'admin' | 'owner_own' | 'owner_other' | CookieCredential>, [number, string]> = {
  none: [401, 'missing_credential'],
  malformed: [401, 'invalid_credential'],
  unknown: [401, 'invalid_api_key'],
  no_scope: [403, 'insufficient_scope'],
  revoked: [401, 'key_revoked'],
  expired: [401, 'key_expired'],
  suspended: [401, 'key_inactive'],
};

type Expect = number | [status: number, error: string];

/**
 * One row per operationId. `admin`, `owner_own` (Alice's keys:manage key on Alice's things) and
 * `owner_other` (Bob's keys:manage key on Alice's things) are the documented answers; `audits` is
 * the audit action a successful call writes (reads write nothing at all); `writes` the tables a
 * successful call may change.
 */
interface Row {
  /** `token`: the credential's bearer value (createSession sends it in the body). */
  request?: (w: World, token: string | null) => { query?: string; body?: unknown };
  /** Answers that differ from the usual ones for this credential (routes that authenticate otherwise). */
  credentials?: Partial<Record<Credential, Expect>>;
  admin: Expect;
  owner_own: Expect;
  owner_other: Expect;
  audits?: string;
  writes?: Table[];
  /** Authenticated by a body signature only: every credential, without one, gets this answer. */
  signatureOnly?: [number, string];
}

const ADMIN_ONLY: [number, string] = [403, 'forbidden'];
const OTHER_USER: [number, string] = [403, 'forbidden'];
const HIDDEN: [number, string] = [404, 'not_found'];
const NO_SESSION: [number, string] = [401, 'invalid_session'];
const BAD_SIGNIN: [number, string] = [401, 'invalid_credentials'];
/** Routes about the cookie's own session: any bearer credential (or none) has no session. */
const SESSION_ONLY: Partial<Record<Credential, Expect>> = Object.fromEntries(
  CREDENTIALS.filter((c) => !isCookie(c)).map((c) => [c, NO_SESSION] as [Credential, Expect]),
);

const EXPECTATIONS: Record<string, Row> = {
  createKey: {
    request: (w) => ({ body: { user_id: w.userId, name: 'made here', scopes: ['read'], rate_limit_per_minute: 10, rate_limit_per_day: 100 } }),
    admin: 201,
    owner_own: 201,
    owner_other: OTHER_USER,
    audits: 'key.created',
    writes: ['api_keys', 'webhook_deliveries'],
  },
  listKeys: { request: (w) => ({ query: `?user_id=${w.userId}` }), admin: 200, owner_own: 200, owner_other: OTHER_USER },
  listUserKeys: { admin: 200, owner_own: 200, owner_other: OTHER_USER },
  getKey: { admin: 200, owner_own: 200, owner_other: HIDDEN },
  updateKey: {
    request: () => ({ body: { name: 'renamed', rate_limit_per_minute: 40 } }),
    admin: 200,
    owner_own: 200,
    owner_other: HIDDEN,
    audits: 'key.updated',
    writes: ['api_keys'],
  },
  revokeKey: {
    request: () => ({ body: { reason: 'suite' } }),
    admin: 200,
    owner_own: 200,
    owner_other: HIDDEN,
    audits: 'key.revoked',
    writes: ['api_keys', 'webhook_deliveries'],
  },
  extendKey: {
    request: () => ({ body: { expires_at: new Date(Date.now() + 2 * DAY).toISOString() } }),
    admin: 200,
    owner_own: 200,
    owner_other: HIDDEN,
    audits: 'key.extended',
    writes: ['api_keys'],
  },
  rotateKey: {
    request: () => ({ body: {} }),
    admin: 200,
    owner_own: 200,
    owner_other: HIDDEN,
    audits: 'key.rotated',
    writes: ['api_keys', 'webhook_deliveries'],
  },
  deleteKey: { admin: 200, owner_own: 200, owner_other: HIDDEN, audits: 'key.deleted', writes: ['api_keys'] },
  listPermissionSets: { admin: 200, owner_own: 200, owner_other: 200 },
  listPlans: { admin: 200, owner_own: 200, owner_other: 200 },
  getUserUsage: { admin: 200, owner_own: 200, owner_other: OTHER_USER },
  getKeyUsage: { admin: 200, owner_own: 200, owner_other: HIDDEN },
  getBillingStatus: { admin: 200, owner_own: ADMIN_ONLY, owner_other: ADMIN_ONLY },
  createServiceToken: {
    request: () => ({ body: { project: 'suite', service: 'api' } }),
    admin: 201,
    owner_own: ADMIN_ONLY,
    owner_other: ADMIN_ONLY,
    audits: 'token.created',
    writes: ['gateway_tokens'],
  },
  listServiceTokens: { admin: 200, owner_own: ADMIN_ONLY, owner_other: ADMIN_ONLY },
  getServiceToken: { admin: 200, owner_own: ADMIN_ONLY, owner_other: ADMIN_ONLY },
  getServiceTokenUsage: { admin: 200, owner_own: ADMIN_ONLY, owner_other: ADMIN_ONLY },
  revokeServiceToken: {
    request: () => ({ body: { reason: 'suite' } }),
    admin: 200,
    owner_own: ADMIN_ONLY,
    owner_other: ADMIN_ONLY,
    audits: 'token.revoked',
    writes: ['gateway_tokens'],
  },
  setProviderKey: {
    request: () => ({ body: { secret: `daily_${randomBytes(8).toString('hex')}` } }),
    admin: 200,
    owner_own: 200,
    owner_other: OTHER_USER,
    audits: 'provider_key.set',
    writes: ['provider_keys'],
  },
  listProviderKeys: { admin: 200, owner_own: 200, owner_other: OTHER_USER },
  deleteProviderKey: { admin: 200, owner_own: 200, owner_other: OTHER_USER, audits: 'provider_key.deleted', writes: ['provider_keys'] },
  createSession: {
    request: (_w, token) => ({ body: token === null ? {} : { token } }),
    admin: 201,
    owner_own: 201,
    owner_other: 201,
    credentials: {
      none: [400, 'invalid_request'],
      malformed: BAD_SIGNIN,
      unknown: BAD_SIGNIN,
      no_scope: BAD_SIGNIN,
      revoked: BAD_SIGNIN,
      expired: BAD_SIGNIN,
      suspended: BAD_SIGNIN,
      // Sign-in reads the body's token, never the cookie: a CSRF header is not needed to sign in.
      cookie_owner_no_csrf: 201,
    },
  },
  getSession: { admin: 200, owner_own: 200, owner_other: 200, credentials: SESSION_ONLY },
  deleteSession: { admin: 204, owner_own: 204, owner_other: 204, credentials: SESSION_ONLY },
  listAuditEvents: { admin: 200, owner_own: 200, owner_other: 200 },
  getUserUsageSeries: { request: () => ({ query: '?bucket=hour' }), admin: 200, owner_own: 200, owner_other: OTHER_USER },
  getKeyUsageSeries: { admin: 200, owner_own: 200, owner_other: HIDDEN },
  getKeysUsage: { request: (w) => ({ query: `?ids=${w.keyId}` }), admin: 200, owner_own: 200, owner_other: HIDDEN },
  getOverview: { admin: 200, owner_own: ADMIN_ONLY, owner_other: ADMIN_ONLY },
  // Stripe signs; a credential counts for nothing (billing/stripe-webhook.ts).
  receiveStripeWebhook: { admin: 0, owner_own: 0, owner_other: 0, signatureOnly: [400, 'invalid_stripe_signature'] },
  rewrapVault: {
    admin: 200,
    owner_own: [403, 'forbidden'],
    owner_other: [403, 'forbidden'],
    audits: 'vault.rewrapped',
    writes: ['provider_keys', 'operator_credentials'],
  },
  createOperatorCredential: {
    request: () => ({ body: { provider: 'daily', label: 'suite', secret: `daily_op_${randomBytes(8).toString('hex')}` } }),
    admin: 201,
    owner_own: ADMIN_ONLY,
    owner_other: ADMIN_ONLY,
    audits: 'operator_credential.created',
    writes: ['operator_credentials'],
  },
  listOperatorCredentials: { admin: 200, owner_own: ADMIN_ONLY, owner_other: ADMIN_ONLY },
  rotateOperatorCredential: {
    request: () => ({ body: { secret: `daily_op_${randomBytes(8).toString('hex')}` } }),
    admin: 200,
    owner_own: ADMIN_ONLY,
    owner_other: ADMIN_ONLY,
    audits: 'operator_credential.rotated',
    writes: ['operator_credentials'],
  },
  deleteOperatorCredential: {
    admin: 200,
    owner_own: ADMIN_ONLY,
    owner_other: ADMIN_ONLY,
    audits: 'operator_credential.deleted',
    writes: ['operator_credentials'],
  },
  createWebhookEndpoint: {
    request: () => ({ body: { url: 'https://hooks.example.com/suite', events: ['key.created', 'key.revoked'] } }),
    admin: 201,
    owner_own: ADMIN_ONLY,
    owner_other: ADMIN_ONLY,
    audits: 'webhook_endpoint.created',
    writes: ['webhook_endpoints'],
  },
  listWebhookEndpoints: { admin: 200, owner_own: ADMIN_ONLY, owner_other: ADMIN_ONLY },
  getWebhookEndpoint: { admin: 200, owner_own: ADMIN_ONLY, owner_other: ADMIN_ONLY },
  updateWebhookEndpoint: {
    request: () => ({ body: { description: 'changed by the suite', events: ['key.revoked'] } }),
    admin: 200,
    owner_own: ADMIN_ONLY,
    owner_other: ADMIN_ONLY,
    audits: 'webhook_endpoint.updated',
    writes: ['webhook_endpoints'],
  },
  deleteWebhookEndpoint: {
    admin: 200,
    owner_own: ADMIN_ONLY,
    owner_other: ADMIN_ONLY,
    audits: 'webhook_endpoint.deleted',
    writes: ['webhook_endpoints', 'webhook_deliveries'],
  },
  rotateWebhookEndpointSecret: {
    request: () => ({ body: { grace_seconds: 60 } }),
    admin: 200,
    owner_own: ADMIN_ONLY,
    owner_other: ADMIN_ONLY,
    audits: 'webhook_endpoint.secret_rotated',
    writes: ['webhook_endpoints'],
  },
  listWebhookDeliveries: { admin: 200, owner_own: ADMIN_ONLY, owner_other: ADMIN_ONLY },
  getWebhookDelivery: { admin: 200, owner_own: ADMIN_ONLY, owner_other: ADMIN_ONLY },
  retryWebhookDelivery: {
    admin: 202,
    owner_own: ADMIN_ONLY,
    owner_other: ADMIN_ONLY,
    audits: 'webhook_delivery.retried',
    writes: ['webhook_deliveries'],
  },
};

const TABLES = ['api_keys', 'gateway_tokens', 'provider_keys', 'operator_credentials', 'idempotency_keys', 'webhook_endpoints', 'webhook_deliveries'] as const;
type Table = (typeof TABLES)[number];
interface Snapshot {
  rows: Record<Table, unknown[]>;
  auditMaxId: number;
}

const SNAPSHOT_SQL: Record<Table, string> = {
  api_keys: 'select * from api_keys order by id',
  gateway_tokens: 'select * from gateway_tokens order by jti',
  provider_keys: `select user_id, provider, master_key_id, encode(wrapped_dek, 'hex') as dek, encode(ciphertext, 'hex') as ct,
                         fingerprint, created_at, updated_at from provider_keys order by user_id, provider`,
  operator_credentials: `select id, provider, label, master_key_id, encode(wrapped_dek, 'hex') as dek, encode(ciphertext, 'hex') as ct,
                                fingerprint, created_at, updated_at from operator_credentials order by id`,
  idempotency_keys: 'select * from idempotency_keys order by scope, key',
  webhook_endpoints: `select id, url, description, events, enabled, master_key_id, encode(wrapped_dek, 'hex') as dek, encode(ciphertext, 'hex') as ct,
                             encode(previous_ciphertext, 'hex') as previous_ct, previous_secret_expires_at, updated_at from webhook_endpoints order by id`,
  webhook_deliveries: 'select * from webhook_deliveries order by id',
};

async function snapshot(): Promise<Snapshot> {
  const rows = {} as Record<Table, unknown[]>;
  for (const t of TABLES) rows[t] = (await api.deps.pool.query(SNAPSHOT_SQL[t])).rows;
  const audit = await api.deps.pool.query<{ max: string | null }>('select max(id) as max from audit_log');
  return { rows, auditMaxId: Number(audit.rows[0]!.max ?? 0) };
}

async function auditSince(s: Snapshot): Promise<{ actor: string; action: string }[]> {
  return (await api.deps.pool.query('select actor, action from audit_log where id > $1 order by id', [s.auditMaxId])).rows;
}

async function expectUnchanged(before: Snapshot, label: string, except: readonly Table[] = []) {
  const after = await snapshot();
  for (const t of TABLES) if (!except.includes(t)) expect.soft(after.rows[t], `${label}: ${t} unchanged`).toEqual(before.rows[t]);
  return after;
}

const credentials = {} as Record<Credential, string | null>;
let aliceOwner: ApiKey;
const asService = () => ({ deps: api.deps }) as unknown as AuthzService;

async function key(fields: Parameters<typeof createKey>[1]): Promise<{ key: ApiKey; plaintext: string }> {
  return createKey(asService(), fields);
}

/** Alice's key as an admin would set it up: limits, billing, expiry and a byok override. */
function operatorKey(extra: Parameters<typeof createKey>[1] = {}) {
  return key({
    userId: ALICE,
    name: 'operator-set',
    permissionSet: null,
    scopes: ['read', 'write'],
    rateLimitPerMinute: 50,
    rateLimitPerDay: 5000,
    expiresAt: new Date(Date.now() + 30 * DAY),
    stripeCustomerId: 'cus_alice',
    metadata: { byok: false, team: 'data' },
    createdBy: 'admin',
    ...extra,
  });
}

async function world(): Promise<World> {
  const target = await operatorKey();
  await api.deps.vault.set(ALICE, 'daily', `daily_${randomBytes(8).toString('hex')}`, 'admin');
  const { record } = await issueServiceToken(api.deps, { project: 'suite', service: 'worker', expiresInDays: 30, createdBy: 'admin' });
  const operator = await api.deps.operatorCredentials.create('daily', 'suite', `daily_op_${randomBytes(8).toString('hex')}`, 'admin');
  // One endpoint per world: endpoints left by earlier cells would each get a delivery for every key
  // later created, and the tables every cell snapshots would grow with the square of the cells.
  await api.deps.pool.query('delete from webhook_endpoints');
  const hooks = new WebhookEndpointService(api.deps.pool, api.deps.vault.envelope, false);
  const { endpoint } = await hooks.create({ url: 'https://hooks.example.com/world', events: ['key.created'], description: null, enabled: true }, 'admin');
  await enqueueWebhook(api.deps.pool, 'key.created', { key_id: target.key.id, user_id: ALICE });
  const delivery = await api.deps.pool.query<{ id: string }>('select id from webhook_deliveries where endpoint_id = $1', [endpoint.id]);
  return {
    keyId: target.key.id,
    jti: record.jti,
    userId: ALICE,
    provider: 'daily',
    operatorCredentialId: operator.id,
    webhookEndpointId: endpoint.id,
    webhookDeliveryId: delivery.rows[0]!.id,
  };
}

/** `/api/keys/:id/usage` with the world's values; a parameter this file does not know fails loudly. */
function fill(url: string, w: World): string {
  const values: Record<string, string> = {
    id: w.keyId,
    user_id: w.userId,
    jti: w.jti,
    provider: w.provider,
    credential_id: w.operatorCredentialId,
    endpoint_id: w.webhookEndpointId,
    delivery_id: w.webhookDeliveryId,
  };
  return url.replace(/:([A-Za-z_]+)/g, (_m, name: string) => {
    if (!(name in values)) throw new Error(`route ${url}: no test value for path parameter :${name}; add it to fill() in management-security.int.test.ts`);
    return values[name]!;
  });
}

let idempotencySeq = 0;
/** A fresh Idempotency-Key, so a refused call is also shown not to leave a claimed record behind. */
const idempotencyKey = () => ({ 'idempotency-key': `suite-${process.pid}-${++idempotencySeq}` });

/** A fresh console session for a cookie credential: its Cookie header, and X-CSRF-Token unless left out. */
async function sessionHeaders(credential: CookieCredential): Promise<Record<string, string>> {
  const r = await api.call('POST', '/api/session', { token: null, body: { token: credentials[COOKIE_SOURCE[credential]] } });
  expect(r.status, r.text).toBe(201);
  const cookie = r.headers.get('set-cookie')!.split(';')[0]!;
  return credential === 'cookie_owner_no_csrf' ? { cookie } : { cookie, 'x-csrf-token': r.body.csrf_token };
}

async function call(route: RouteSpec, w: World, credential: Credential): Promise<ApiAnswer> {
  const token = isCookie(credential) ? credentials[COOKIE_SOURCE[credential]] : credentials[credential];
  const { query = '', body } = EXPECTATIONS[route.operationId]!.request?.(w, token) ?? {};
  const headers = { ...(route.idempotent ? idempotencyKey() : {}), ...(isCookie(credential) ? await sessionHeaders(credential) : {}) };
  return api.call(route.method, fill(route.url, w) + query, { token: isCookie(credential) ? null : token, body, headers });
}

function expected(row: Row, credential: Credential, route: RouteSpec): { status: number; error?: string } {
  if (row.signatureOnly) return { status: row.signatureOnly[0], error: row.signatureOnly[1] };
  const override = row.credentials?.[credential];
  if (override !== undefined) return typeof override === 'number' ? { status: override } : { status: override[0], error: override[1] };
  if (credential === 'cookie_owner_no_csrf' && route.method !== 'GET') return { status: 403, error: 'csrf_failed' };
  if (credential in REFUSED_BEFORE_ROUTE) {
    const [status, error] = REFUSED_BEFORE_ROUTE[credential as keyof typeof REFUSED_BEFORE_ROUTE];
    return { status, error };
  }
  // A cookie acts as the credential it was made from.
  const e = row[isCookie(credential) ? COOKIE_SOURCE[credential] : (credential as 'admin' | 'owner_own' | 'owner_other')];
  return typeof e === 'number' ? { status: e } : { status: e[0], error: e[1] };
}

let routes: RouteSpec[];

beforeAll(async () => {
  api = await startTestApi(infra, 'mgmt-security', {
    GATEWAY_JWT_SECRET: `k1:${randomBytes(24).toString('hex')}`,
    VAULT_MASTER_KEYS: `mk1:${randomBytes(32).toString('base64')}`,
    ROTATION_GRACE_SECONDS: String(ROTATION_GRACE_SECONDS),
    PLANS: JSON.stringify([{ name: 'pro', rate_limit_per_minute: 1000, stripe_price: 'price_suite_pro' }]),
    // Every credential signs in here, the failing ones too: the limiter has its own test (session.int.test.ts).
    SESSION_SIGNIN_FAILURES_PER_MINUTE: '1000000',
  });
  // Usage routes read billing-sidecar's tables; without them they answer 503 by design.
  await migrateBilling(api.deps.pool);
  routes = managementRoutes(api.deps);

  const manage = ['keys:manage', 'read', 'write'];
  const owner = await key({
    userId: ALICE,
    name: 'alice manager',
    permissionSet: null,
    scopes: manage,
    rateLimitPerMinute: 100,
    rateLimitPerDay: 10_000,
    expiresAt: new Date(Date.now() + 90 * DAY),
    stripeCustomerId: 'cus_alice',
    metadata: { byok: false },
  });
  aliceOwner = owner.key;
  credentials.owner_own = owner.plaintext;
  credentials.owner_other = (await key({ userId: BOB, name: 'bob manager', permissionSet: null, scopes: manage })).plaintext;
  credentials.admin = TEST_ADMIN_TOKEN;
  credentials.none = null;
  credentials.malformed = 'sk_this-is-not-a-key';
  credentials.unknown = generateKey('sk').plaintext;
  credentials.no_scope = (await key({ userId: ALICE, permissionSet: 'full_access' })).plaintext;
  const revoked = await key({ userId: ALICE, permissionSet: null, scopes: manage });
  await api.deps.keyStore.revoke(revoked.key.id, 'admin', 'suite');
  credentials.revoked = revoked.plaintext;
  credentials.expired = (await key({ userId: ALICE, permissionSet: null, scopes: manage, expiresAt: new Date(Date.now() - 1000) })).plaintext;
  const suspended = await key({ userId: ALICE, permissionSet: null, scopes: manage });
  await api.deps.keyStore.update(suspended.key.id, { isActive: false });
  credentials.suspended = suspended.plaintext;
});

afterAll(async () => {
  await api?.stop();
});

describe('every management route has a row', () => {
  it('EXPECTATIONS covers exactly the routes managementRoutes() registers', () => {
    const ids = routes.map((r) => r.operationId);
    const missing = ids.filter((id) => !(id in EXPECTATIONS));
    expect(
      missing,
      `routes without a row: add ${missing.map((m) => `"${m}"`).join(', ')} to EXPECTATIONS in authz-service/test/management-security.int.test.ts ` +
        '(the status for admin, owner_own and owner_other, and audits/writes if it changes anything)',
    ).toEqual([]);
    const stale = Object.keys(EXPECTATIONS).filter((id) => !ids.includes(id));
    expect(stale, `rows for routes that no longer exist: remove ${stale.join(', ')}`).toEqual([]);
  });

  it('is the list /openapi.json documents (every operation that needs a credential)', async () => {
    const doc = (await api.call('GET', '/openapi.json', { token: null })).body;
    const secured = Object.values(doc.paths as Record<string, Record<string, { operationId: string; security?: unknown[] }>>)
      .flatMap((ops) => Object.values(ops))
      .filter((op) => !(Array.isArray(op.security) && op.security.length === 0))
      .map((op) => op.operationId)
      .sort();
    expect(secured).toEqual(
      routes
        .filter((r) => r.authentication !== 'none')
        .map((r) => r.operationId)
        .sort(),
    );
  });
});

describe.each(CREDENTIALS)('credential: %s', (credential) => {
  it('gets the documented answer on every route, and a refusal changes nothing', async () => {
    for (const route of routes) {
      const row = EXPECTATIONS[route.operationId];
      if (!row) continue; // reported by the coverage test above
      const label = `${credential} ${route.method} ${route.url} (${route.operationId})`;
      const w = await world();
      const before = await snapshot();
      const r = await call(route, w, credential);
      const want = expected(row, credential, route);
      expect.soft(r.status, `${label}: ${r.text.slice(0, 200)}`).toBe(want.status);
      if (want.error) expect.soft(r.body?.error, label).toBe(want.error);
      expect.soft(route.responses[r.status], `${label}: status ${r.status} is documented in /openapi.json`).toBeDefined();
      if (r.status >= 400) {
        expect.soft(r.body, `${label}: JSON error`).toMatchObject({ error: expect.any(String), message: expect.any(String) });
        await expectUnchanged(before, label);
        expect.soft(await auditSince(before), `${label}: no audit row`).toEqual([]);
        if (r.status === 401) expect.soft(r.headers.get('www-authenticate'), label).toMatch(/^Bearer realm="tollgate"/);
      } else {
        await expectUnchanged(before, label, [...(row.writes ?? []), ...(route.idempotent ? (['idempotency_keys'] as const) : [])]);
        const actor = credential === 'admin' || credential === 'cookie_admin' ? 'admin' : `key:${aliceOwner.id}`;
        expect.soft(await auditSince(before), `${label}: audit rows`).toEqual(row.audits ? [{ actor, action: row.audits }] : []);
      }
    }
  });
});

/** One owner attempt at an operator-controlled field. */
interface FieldCase {
  name: string;
  field: string;
  /** The key acted on: an operator-set key of Alice's, or the owner key itself. */
  target?: 'operator' | 'self';
  /** Runs as admin before the owner's attempt (e.g. an admin suspension). */
  setup?: (keyId: string) => Promise<void>;
  method: 'PATCH' | 'POST';
  path: (keyId: string) => string;
  body: unknown;
}

const patch = (body: unknown) => ({ method: 'PATCH' as const, path: (id: string) => `/api/keys/${id}`, body });
const post = (action: string, body: unknown) => ({ method: 'POST' as const, path: (id: string) => `/api/keys/${id}/${action}`, body });
const create = (body: Record<string, unknown>) => ({
  method: 'POST' as const,
  path: () => '/api/keys',
  body: { user_id: ALICE, name: 'by owner', scopes: ['read'], ...body },
});

const FIELD_CASES: FieldCase[] = [
  { name: 'raise its own rate limit to 1,000,000', field: 'rate_limit_per_minute', target: 'self', ...patch({ rate_limit_per_minute: 1_000_000 }) },
  { name: 'raise a per-minute limit', field: 'rate_limit_per_minute', ...patch({ rate_limit_per_minute: 51 }) },
  { name: 'remove a per-minute limit (null)', field: 'rate_limit_per_minute', ...patch({ rate_limit_per_minute: null }) },
  { name: 'raise a per-day limit', field: 'rate_limit_per_day', ...patch({ rate_limit_per_day: 5001 }) },
  { name: 'unset its own Stripe customer (never billed)', field: 'stripe_customer_id', target: 'self', ...patch({ stripe_customer_id: null }) },
  { name: 'bill another customer', field: 'stripe_customer_id', ...patch({ stripe_customer_id: 'cus_bob' }) },
  {
    name: 'lift an admin suspension',
    field: 'is_active',
    setup: async (id) => {
      expect((await api.call('PATCH', `/api/keys/${id}`, { body: { is_active: false } })).status).toBe(200);
    },
    ...patch({ is_active: true }),
  },
  { name: 'widen the permission set', field: 'permission_set', ...patch({ permission_set: 'full_access' }) },
  { name: 'widen scopes with one it holds', field: 'scopes', ...patch({ scopes: ['read', 'write', 'keys:manage'] }) },
  { name: 'override PROVIDER_BYOK with metadata.byok', field: 'metadata.byok', ...patch({ metadata: { byok: true, team: 'data' } }) },
  { name: 'drop the operator’s metadata.byok', field: 'metadata.byok', ...patch({ metadata: { team: 'data' } }) },
  { name: 'remove an admin-set expiry', field: 'expires_at', ...post('extend', { expires_at: null }) },
  { name: 'extend an expiry by days', field: 'days', ...post('extend', { days: 1 }) },
  { name: 'move an expiry later', field: 'expires_at', ...post('extend', { expires_at: new Date(Date.now() + 60 * DAY).toISOString() }) },
  { name: 'keep a rotated secret past ROTATION_GRACE_SECONDS', field: 'grace_seconds', ...post('rotate', { grace_seconds: ROTATION_GRACE_SECONDS + 1 }) },
  { name: 'create a key above its own limit', field: 'rate_limit_per_minute', ...create({ rate_limit_per_minute: 101 }) },
  { name: 'create an unlimited key', field: 'rate_limit_per_day', ...create({ rate_limit_per_day: null }) },
  { name: 'create a key billed to someone else', field: 'stripe_customer_id', ...create({ stripe_customer_id: 'cus_bob' }) },
  { name: 'create an unbilled key', field: 'stripe_customer_id', ...create({ stripe_customer_id: null }) },
  { name: 'create a key with metadata.byok', field: 'metadata.byok', ...create({ metadata: { byok: true } }) },
  {
    name: 'grant itself operator credentials',
    field: 'metadata.managed_providers',
    ...patch({ metadata: { byok: false, team: 'data', managed_providers: ['daily'] } }),
  },
  { name: 'create a key granted operator credentials', field: 'metadata.managed_providers', ...create({ metadata: { managed_providers: ['daily'] } }) },
  { name: 'put a key on a plan', field: 'plan', ...patch({ plan: 'pro' }) },
  { name: 'create a key on a plan', field: 'plan', ...create({ plan: 'pro' }) },
  {
    name: 'grant its own key operator credentials',
    field: 'metadata.managed_providers',
    target: 'self',
    ...patch({ metadata: { byok: false, managed_providers: ['daily'] } }),
  },
  { name: 'create a key that never expires', field: 'expires_at', ...create({ expires_at: null }) },
  { name: 'create a key that outlives its own', field: 'expires_in_days', ...create({ expires_in_days: 365 }) },
];

describe('owner field policy: admin-only fields', () => {
  it.each(FIELD_CASES.map((c) => [c.name, c] as const))('an owner may not %s: 403 naming the field, nothing changed; an admin may', async (_name, c) => {
    const targetId = c.target === 'self' ? aliceOwner.id : (await operatorKey()).key.id;
    await c.setup?.(targetId);
    const before = await snapshot();
    const r = await api.call(c.method, c.path(targetId), { token: credentials.owner_own, body: c.body, headers: c.method === 'POST' ? idempotencyKey() : {} });
    expect(r.status, r.text).toBe(403);
    expect(r.body).toMatchObject({ error: 'field_not_allowed', field: c.field });
    expect(r.body.message).toContain(`"${c.field}"`);
    await expectUnchanged(before, c.name);
    expect(await auditSince(before)).toEqual([]);

    // The same request is valid: it is the operator's to make.
    const asAdmin = await api.call(c.method, c.path(targetId), { body: c.body });
    expect(asAdmin.status, asAdmin.text).toBeLessThan(300);
    if (c.target === 'self') {
      // Put the owner key back as it was for the cases after this one.
      await api.deps.keyStore.update(aliceOwner.id, {
        rateLimitPerMinute: aliceOwner.rateLimitPerMinute,
        stripeCustomerId: aliceOwner.stripeCustomerId,
        metadata: aliceOwner.metadata,
      });
    }
  });
});

describe('owner field policy: what an owner may do', () => {
  it('narrows, lowers, shortens, suspends and lifts its own suspension', async () => {
    const { key: k } = await operatorKey();
    const as = (method: string, path: string, body: unknown) => api.call(method, path, { token: credentials.owner_own, body });
    const soon = new Date(Date.now() + 5 * DAY).toISOString();
    for (const [method, path, body] of [
      ['PATCH', `/api/keys/${k.id}`, { name: 'mine', description: 'd', rate_limit_per_minute: 10, rate_limit_per_day: 100, scopes: ['read'] }],
      ['PATCH', `/api/keys/${k.id}`, { metadata: { byok: false, note: 'kept byok as the operator set it' }, stripe_customer_id: 'cus_alice' }],
      ['POST', `/api/keys/${k.id}/extend`, { expires_at: soon }],
      ['POST', `/api/keys/${k.id}/rotate`, { grace_seconds: ROTATION_GRACE_SECONDS }],
      ['PATCH', `/api/keys/${k.id}`, { is_active: false }],
      ['PATCH', `/api/keys/${k.id}`, { is_active: true }],
    ] as const) {
      const r = await as(method, path, body);
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}: ${r.text}`).toBe(200);
    }
    const after = (await api.call('GET', `/api/keys/by-id/${k.id}`)).body;
    expect(after).toMatchObject({
      name: 'mine',
      rate_limit_per_minute: 10,
      rate_limit_per_day: 100,
      scopes: ['read'],
      stripe_customer_id: 'cus_alice',
      metadata: { byok: false, note: 'kept byok as the operator set it' },
      expires_at: soon,
      is_active: true,
    });
  });

  it('rotation changes only the secret', async () => {
    const { key: k } = await operatorKey();
    const before = (await api.call('GET', `/api/keys/by-id/${k.id}`)).body;
    const r = await api.call('POST', `/api/keys/${k.id}/rotate`, { token: credentials.owner_own, body: {} });
    expect(r.status).toBe(200);
    const { key_prefix: _p, previous_key_expires_at: _g, updated_at: _u, ...kept } = before;
    expect(r.body).toMatchObject(kept);
  });

  it('a key created by an owner inherits the creator’s limits, expiry, Stripe customer and byok', async () => {
    const r = await api.call('POST', '/api/keys', {
      token: credentials.owner_own,
      body: { user_id: ALICE, name: 'inherits', scopes: ['read'], metadata: { team: 'x' } },
    });
    expect(r.status, r.text).toBe(201);
    expect(r.body).toMatchObject({
      rate_limit_per_minute: 100,
      rate_limit_per_day: 10_000,
      expires_at: aliceOwner.expiresAt!.toISOString(),
      stripe_customer_id: 'cus_alice',
      metadata: { byok: false, team: 'x' },
      created_by: `key:${aliceOwner.id}`,
    });
    const lower = await api.call('POST', '/api/keys', {
      token: credentials.owner_own,
      body: { user_id: ALICE, name: 'lower', scopes: ['read'], rate_limit_per_minute: 5, expires_in_days: 1, stripe_customer_id: 'cus_alice' },
    });
    expect(lower.status, lower.text).toBe(201);
    expect(lower.body.rate_limit_per_minute).toBe(5);
  });
});
