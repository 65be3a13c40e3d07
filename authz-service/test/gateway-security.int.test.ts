import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { generateKey } from '../src/domain/key-format.js';
import { effectiveScopes, permissionSets } from '../src/domain/scopes.js';
import { issueServiceToken, revokeServiceToken } from '../src/tokens/token-service.js';
import { TestStack } from '@tollgate/devstack';
import { createKey, startAuthzStack, type EnvoyFront, type TestAuthz } from './helpers.js';

// The gateway's trust boundaries, route by route, through the real Envoy: every kind of
// credential against normal, scoped, service-token-only and health routes. Each cell states
// what the client gets (the upstream's answer, or the gateway's status and error code) and
// checks what reached the upstream: nothing at all for a refusal; for an answer, the real
// identity only (never a spoofed one, never the credential, never a method override).
// docs/authz.md ("Path matching", "Service-token-only routes") states the rules tested here;
// docs/vault.md the provider route's precedence (own → user's → operator's where granted → 400).
const infra = inject('infra');

const SERVICE_TOKEN_ROUTES = [{ prefix: '/captionacc/prefect/api/', project: 'captionacc', services: ['api'] }];
const ROUTE_SCOPES = [{ prefix: '/echo/admin', scope: 'admin' }];
// Plans whose scopes bound their keys' (docs/billing.md, "Plans").
const PLANS = [
  { name: 'reader', scopes: ['read'], stripe_price: 'price_gs_reader' },
  { name: 'everything', scopes: ['*'], stripe_price: 'price_gs_everything' },
];
const PROVIDER_ROUTES = [{ prefix: '/echo/rooms/', default_provider: 'daily' }];
/** The operator's one daily credential: only keys granted daily may have it injected. */
const OPERATOR_SECRET = `daily_operator_${randomBytes(8).toString('hex')}`;
const USER_SECRET = `daily_user_${randomBytes(8).toString('hex')}`;

const ROUTES = {
  hello: ['GET', '/hello'],
  echoPost: ['POST', '/echo'],
  // `read:/echo/reports` covers this one…
  reports: ['GET', '/echo/reports/q1'],
  // …but not across a segment boundary, and grants match the exact case only.
  reportsAdmin: ['GET', '/echo/reports-admin'],
  reportsCase: ['GET', '/echo/Reports/q1'],
  // ROUTE_SCOPES demands `admin` here, whatever the case (a rule that restricts ignores case).
  admin: ['GET', '/echo/admin/users'],
  adminCase: ['GET', '/echo/ADMIN/users'],
  // Envoy decodes percent-encoded unreserved characters (normalize_path) before the Check.
  adminEncoded: ['GET', '/echo/%61dmin/users'],
  // …and resolves dot segments, encoded ones too: this is /echo/admin/users, not under /echo/reports.
  adminDotted: ['GET', '/echo/reports/%2e%2e/admin/users'],
  // Path parameters are refused before anything else: upstreams disagree on what they mean.
  pathParam: ['GET', '/echo/admin;x=1/users'],
  pathParamEncoded: ['GET', '/echo/reports/..%3B/admin'],
  // Service tokens only (SERVICE_TOKEN_ROUTES); Envoy routes it to the internal upstream.
  internal: ['GET', '/captionacc/prefect/api/health'],
  internalCase: ['GET', '/CAPTIONACC/prefect/api/health'],
  ping: ['GET', '/ping'],
  health: ['GET', '/health'],
  // A provider route (PROVIDER_ROUTES): the upstream gets the credential precedence chose.
  provider: ['GET', '/echo/rooms/create'],
} as const;
type Route = keyof typeof ROUTES;

/** `up`: answered by the upstream; `envoy`: answered by Envoy itself; else the gateway's refusal. */
type Cell = 'up' | 'envoy' | `${400 | 401 | 403} ${string}`;

// What a client slips in to pose as someone else, or to turn its GET into a DELETE upstream.
const SPOOFED: Record<string, string> = {
  'x-user-id': 'spoofed-user',
  'x-api-key-id': 'key_spoofed0000000000000',
  'x-api-key-scopes': 'keys:manage spoofed',
  'x-service-project': 'spoofed-project',
  'x-service-name': 'spoofed-service',
  'x-token-id': 'spoofed-token',
  'x-tollgate-customer': 'cus_spoofed',
  'x-http-method-override': 'DELETE',
  'x-http-method': 'DELETE',
  'x-method-override': 'DELETE',
};
const OVERRIDES = ['x-http-method-override', 'x-http-method', 'x-method-override'];

/** Who the upstream should be told the caller is (header → value), for a credential that gets in. */
type Identity = Record<string, string>;

interface Credential {
  headers: Record<string, string>;
  /** The credential's value, which must never reach the upstream. */
  secret?: string;
  identity?: Identity;
  /** The X-Provider-Auth the upstream must get on the provider route (and nowhere else). */
  providerAuth?: string;
}

/** Every route refused the same way, except what a credential's row says otherwise. */
function row(refusal: Cell, except: Partial<Record<Route, Cell>> = {}): Record<Route, Cell> {
  const cells = Object.fromEntries(Object.keys(ROUTES).map((r) => [r, refusal])) as Record<Route, Cell>;
  return { ...cells, pathParam: '400 invalid_path', pathParamEncoded: '400 invalid_path', ping: 'envoy', health: 'up', ...except };
}

const fullAccess: Partial<Record<Route, Cell>> = {
  hello: 'up',
  echoPost: 'up',
  reports: 'up',
  reportsAdmin: 'up',
  reportsCase: 'up',
  admin: 'up',
  adminCase: 'up',
  adminEncoded: 'up',
  adminDotted: 'up',
  internal: '403 service_token_required',
  internalCase: '403 service_token_required',
  // Neither the user nor a grant provides a daily credential: the operator's is not a fallback.
  provider: '400 provider_credential_missing',
};

const EXPECTED: Record<string, Record<Route, Cell>> = {
  none: row('401 missing_credential'),
  malformed: row('401 invalid_credential'),
  unknownKey: row('401 invalid_api_key'),
  fullAccessKey: row('403 service_token_required', fullAccess),
  // Only the operator-granted scope opens the internal route, and only in its exact case.
  serviceRouteKey: row('403 service_token_required', { ...fullAccess, internal: 'up' }),
  readOnlyKey: row('403 insufficient_scope', {
    hello: 'up',
    reports: 'up',
    reportsAdmin: 'up',
    reportsCase: 'up',
    internal: '403 service_token_required',
    internalCase: '403 service_token_required',
    provider: '400 provider_credential_missing',
  }),
  scopedKey: row('403 insufficient_scope', {
    reports: 'up',
    internal: '403 service_token_required',
    internalCase: '403 service_token_required',
  }),
  // full_access, on a plan of `read`: no more than a read-only key.
  readPlanKey: row('403 insufficient_scope', {
    hello: 'up',
    reports: 'up',
    reportsAdmin: 'up',
    reportsCase: 'up',
    internal: '403 service_token_required',
    internalCase: '403 service_token_required',
    provider: '400 provider_credential_missing',
  }),
  // A plan's `*` grants no service_route, as a key's does not: the operator's grant is bounded too.
  serviceRouteKeyOnStarPlan: row('403 service_token_required', fullAccess),
  // metadata.managed_providers: ["daily"], set by the admin: the operator's credential is injected.
  managedKey: row('403 service_token_required', { ...fullAccess, provider: 'up' }),
  // Granted daily, but its user stored one: the user's wins over the operator's.
  managedVaultKey: row('403 service_token_required', { ...fullAccess, provider: 'up' }),
  // Granted another provider only.
  otherProviderKey: row('403 service_token_required', fullAccess),
  // A keys:manage owner key that tried to grant itself daily (refused in beforeAll): still nothing.
  selfGrantOwnerKey: row('403 service_token_required', fullAccess),
  revokedKey: row('401 key_revoked'),
  expiredKey: row('401 key_expired'),
  internalToken: row('403 route_not_allowed', { internal: 'up' }),
  // A token whose routes are `/echo/reports`: that segment and below, nothing beside it.
  reportsToken: row('403 route_not_allowed', { reports: 'up' }),
  // Claims the internal prefix, but SERVICE_TOKEN_ROUTES gives it to another project.
  otherProjectToken: row('403 route_not_allowed'),
  revokedToken: row('401 token_revoked'),
};

let authz: TestAuthz;
let front: EnvoyFront;
const stack = new TestStack();
const upstream = new Map<string, { method: string; headers: Record<string, string | string[] | undefined> }[]>();
const credentials: Record<string, Credential> = {};

beforeAll(async () => {
  ({ authz, front } = await startAuthzStack(stack, infra, 'gateway_security', {
    config: {
      GATEWAY_JWT_SECRET: 'gs:' + 'g'.repeat(40),
      SERVICE_TOKEN_ROUTES: JSON.stringify(SERVICE_TOKEN_ROUTES),
      ROUTE_SCOPES: JSON.stringify(ROUTE_SCOPES),
      PLANS: JSON.stringify(PLANS),
      PROVIDER_ROUTES: JSON.stringify(PROVIDER_ROUTES),
      VAULT_MASTER_KEYS: `gs:${randomBytes(32).toString('base64')}`,
    },
    envoy: {
      onUpstreamRequest: ({ method, url, headers }) => {
        const cell = new URL(url, 'http://upstream').searchParams.get('cell') ?? '(none)';
        upstream.set(cell, [...(upstream.get(cell) ?? []), { method, headers }]);
      },
    },
  }));

  const bearer = (secret: string, identity?: Identity): Credential => ({ headers: { authorization: `Bearer ${secret}` }, secret, identity });
  const key = async (fields: Parameters<typeof createKey>[1]) => {
    const { key: k, plaintext } = await createKey(authz, fields);
    const scopes = authz.deps.plans.scopesOf(effectiveScopes(k, permissionSets(undefined)), k.plan).join(' ');
    return { k, cred: bearer(plaintext, { 'x-user-id': k.userId, 'x-api-key-id': k.id, 'x-api-key-scopes': scopes }) };
  };
  const token = async (project: string, service: string, routes?: string[]) => {
    const { token: t, record } = await issueServiceToken(authz.deps, { project, service, routes, expiresInDays: 1, createdBy: 'admin' });
    return { record, cred: bearer(t, { 'x-service-project': project, 'x-service-name': service, 'x-token-id': record.jti }) };
  };

  credentials.none = { headers: {} };
  credentials.malformed = { headers: { authorization: 'Basic c2tfbm9wZTpub3BlCg==' } };
  const unknown = generateKey(authz.deps.config.KEY_PREFIX).plaintext;
  credentials.unknownKey = { headers: { 'x-api-key': unknown }, secret: unknown };
  credentials.fullAccessKey = (await key({ userId: 'full-user' })).cred;
  credentials.serviceRouteKey = (await key({ userId: 'ops-user', scopes: ['service_route:/captionacc/prefect/api/'] })).cred;
  credentials.readOnlyKey = (await key({ userId: 'reader', permissionSet: 'read_only' })).cred;
  credentials.scopedKey = (await key({ userId: 'report-reader', permissionSet: null, scopes: ['read:/echo/reports'] })).cred;
  credentials.readPlanKey = (await key({ userId: 'plan-reader', plan: 'reader' })).cred;
  credentials.serviceRouteKeyOnStarPlan = (await key({ userId: 'ops-planned', scopes: ['service_route:/captionacc/prefect/api/'], plan: 'everything' })).cred;
  const revoked = await key({ userId: 'gone-user' });
  await authz.deps.keyStore.revoke(revoked.k.id, 'admin', 'leaked');
  credentials.revokedKey = revoked.cred;
  credentials.expiredKey = (await key({ userId: 'late-user', expiresAt: new Date(Date.now() - 60_000) })).cred;
  credentials.internalToken = (await token('captionacc', 'api')).cred;
  credentials.reportsToken = (await token('reports', 'worker', ['/echo/reports'])).cred;
  credentials.otherProjectToken = (await token('intruder', 'api', ['/captionacc/'])).cred;
  const revokedToken = await token('captionacc', 'api');
  await revokeServiceToken(authz.deps, revokedToken.record.jti, 'admin', 'leaked');
  credentials.revokedToken = revokedToken.cred;

  await authz.deps.operatorCredentials.create('daily', 'gateway suite', OPERATOR_SECRET, 'admin');
  const operatorAuth = `Bearer ${OPERATOR_SECRET}`;
  credentials.managedKey = { ...(await key({ userId: 'managed-user', metadata: { managed_providers: ['daily'] } })).cred, providerAuth: operatorAuth };
  await authz.deps.vault.set('managed-vault-user', 'daily', USER_SECRET);
  credentials.managedVaultKey = {
    ...(await key({ userId: 'managed-vault-user', metadata: { managed_providers: ['daily'] } })).cred,
    providerAuth: `Bearer ${USER_SECRET}`,
  };
  credentials.otherProviderKey = (await key({ userId: 'openai-user', metadata: { managed_providers: ['openai'] } })).cred;
  const owner = await key({ userId: 'owner-user', scopes: ['keys:manage'] });
  credentials.selfGrantOwnerKey = owner.cred;
  // What the owner key tries on the management API first: each refused, nothing changed.
  const manage = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${authz.httpPort}${path}`, {
      method,
      headers: { ...owner.cred.headers, 'idempotency-key': randomBytes(8).toString('hex'), ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, text: await res.text() };
  };
  const grant = { managed_providers: ['daily'] };
  for (const [method, path, body, error] of [
    ['PATCH', `/api/keys/${owner.k.id}`, { metadata: grant }, 'field_not_allowed'],
    ['POST', '/api/keys', { user_id: 'owner-user', name: 'granted', metadata: grant }, 'field_not_allowed'],
    ['GET', '/api/operator-credentials', undefined, 'forbidden'],
  ] as const) {
    const r = await manage(method, path, body);
    expect(r.status, `${method} ${path}: ${r.text}`).toBe(403);
    expect(JSON.parse(r.text).error).toBe(error);
    expect(r.text).not.toContain(OPERATOR_SECRET);
  }
  expect((await authz.deps.keyStore.getById(owner.k.id))?.metadata).toEqual({});
  expect((await authz.deps.keyStore.listByUser('owner-user')).map((k) => k.id)).toEqual([owner.k.id]);
});

afterAll(() => stack.stop());

const IDENTITY_HEADERS = ['x-user-id', 'x-api-key-id', 'x-api-key-scopes', 'x-service-project', 'x-service-name', 'x-token-id', 'x-tollgate-customer'];

/** What went wrong with what reached the upstream for one cell (empty when nothing did). */
function upstreamProblems(cellId: string, cell: Cell, route: Route, cred: Credential): string[] {
  const seen = upstream.get(cellId) ?? [];
  if (cell !== 'up') return seen.length === 0 ? [] : [`${cellId}: refused or answered by Envoy, yet reached the upstream`];
  if (seen.length !== 1) return [`${cellId}: reached the upstream ${seen.length} times`];
  const { method, headers } = seen[0]!;
  const problems: string[] = [];
  if (method !== ROUTES[route][0]) problems.push(`${cellId}: upstream saw method ${method}`);
  for (const h of OVERRIDES) if (headers[h] !== undefined) problems.push(`${cellId}: ${h} reached the upstream`);
  for (const h of ['authorization', 'x-api-key']) if (headers[h] !== undefined) problems.push(`${cellId}: ${h} reached the upstream`);
  if (cred.secret && JSON.stringify(headers).includes(cred.secret)) problems.push(`${cellId}: the credential reached the upstream`);
  const providerAuth = route === 'provider' ? cred.providerAuth : undefined;
  if (headers['x-provider-auth'] !== providerAuth) {
    problems.push(`${cellId}: upstream got x-provider-auth=${JSON.stringify(headers['x-provider-auth'])}, expected ${JSON.stringify(providerAuth)}`);
  }
  // On /health no Check runs, so no identity at all; elsewhere exactly the credential's own.
  const identity = route === 'health' ? {} : (cred.identity ?? {});
  for (const h of IDENTITY_HEADERS) {
    const want = identity[h];
    if (headers[h] !== want) {
      problems.push(`${cellId}: upstream got ${h}=${JSON.stringify(headers[h])}, expected ${JSON.stringify(want)}`);
    }
    if (headers[h] === SPOOFED[h]) problems.push(`${cellId}: spoofed ${h} reached the upstream`);
  }
  return problems;
}

describe('gateway security: every credential against every kind of route, through Envoy', () => {
  it.each(Object.keys(EXPECTED))('%s', async (name) => {
    const cred = credentials[name]!;
    const expected = EXPECTED[name]!;
    const actual: Partial<Record<Route, Cell>> = {};
    const problems: string[] = [];
    for (const route of Object.keys(ROUTES) as Route[]) {
      const [method, path] = ROUTES[route];
      const cellId = `${name}.${route}`;
      const res = await fetch(`${front.url}${path}?cell=${cellId}`, {
        method,
        headers: { ...SPOOFED, ...cred.headers, ...(method === 'POST' ? { 'content-type': 'text/plain' } : {}) },
        body: method === 'POST' ? 'hello' : undefined,
      });
      const text = await res.text();
      const reachedUpstream = upstream.has(cellId);
      // backend-hello echoes the headers it got: only a granted key's provider answer may show the operator's secret.
      if (text.includes(OPERATOR_SECRET) && !(name === 'managedKey' && route === 'provider')) problems.push(`${cellId}: the operator's credential came back`);
      if (res.status === 200) {
        actual[route] = reachedUpstream ? 'up' : 'envoy';
      } else {
        let error = '(not JSON)';
        try {
          const body = JSON.parse(text) as { error?: unknown; message?: unknown };
          error = typeof body.error === 'string' && typeof body.message === 'string' ? body.error : '(no error/message)';
        } catch {
          /* reported through the cell */
        }
        actual[route] = `${res.status as 400 | 401 | 403} ${error}`;
        if (res.headers.get('content-type') !== 'application/json') problems.push(`${cellId}: content-type ${res.headers.get('content-type')}`);
      }
      problems.push(...upstreamProblems(cellId, expected[route], route, cred));
    }
    expect(actual).toEqual(expected);
    expect(problems).toEqual([]);
  });
});
