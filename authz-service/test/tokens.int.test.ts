import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TestStack, type RunningEnvoy } from '@tollgate/devstack';
import { signServiceToken } from '../src/domain/service-token.js';
import { issueServiceToken, revokeServiceToken } from '../src/tokens/token-service.js';
import { headersOf, httpStatusOf, metadataOf, sleep, stackAuthz, stackCheck, stackEnv, startEnvoyFront, type CheckFn, type TestAuthz } from './helpers.js';

// Seed 001's service tokens through the real gRPC Check and the real Envoy.
const infra = inject('infra');
const OLD = 'old:' + 'o'.repeat(40);
const NEW = 'new:' + 'n'.repeat(40);
const ROUTES = JSON.stringify([{ prefix: '/captionacc/prefect/api/', project: 'captionacc', services: ['api', 'orchestrator'] }]);

let a: TestAuthz;
let b: TestAuthz;
let checkA: CheckFn;
let checkB: CheckFn;
let envoy: RunningEnvoy;
const stack = new TestStack();

beforeAll(async () => {
  const env = await stackEnv(stack, infra, 'tokens');
  // Replica a signs with NEW and still accepts OLD (a rotation in progress); b only knows NEW.
  a = await stackAuthz(stack, env, { GATEWAY_JWT_SECRET: `${NEW},${OLD}`, SERVICE_TOKEN_ROUTES: ROUTES, KEY_CACHE_TTL_MS: '600000' });
  b = await stackAuthz(stack, env, { GATEWAY_JWT_SECRET: NEW, SERVICE_TOKEN_ROUTES: ROUTES, KEY_CACHE_TTL_MS: '600000' });
  checkA = stackCheck(stack, a);
  checkB = stackCheck(stack, b);
  envoy = (await startEnvoyFront(stack, a.grpcPort)).envoy;
});

afterAll(() => stack.stop());

const PATH = '/captionacc/prefect/api/health';
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const issue = (service = 'api', days = 90) =>
  issueServiceToken(a.deps, { project: 'captionacc', service, description: 'CaptionA.cc API service', expiresInDays: days, createdBy: 'admin' });

function b64url(o: object): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

describe('service tokens at Check', () => {
  it('a valid token on its route: allowed, service identity injected, token removed', async () => {
    const { token, record } = await issue();
    const res = await checkA({ path: PATH, headers: bearer(token) });
    expect(httpStatusOf(res)).toBe(200);
    const h = headersOf(res.okResponse?.headers);
    expect(h).toMatchObject({ 'x-service-project': 'captionacc', 'x-service-name': 'api', 'x-token-id': record.jti });
    expect(res.okResponse?.headersToRemove).toContain('authorization');
    expect(metadataOf(res)).toMatchObject({ credential: 'service_token', token_id: record.jti, project: 'captionacc', service: 'api' });
  });

  it('the wrong route, or a service the route does not admit: 403', async () => {
    const { token } = await issue();
    expect(httpStatusOf(await checkA({ path: '/hello', headers: bearer(token) }))).toBe(403);
    const web = await issue('web');
    const res = await checkA({ path: PATH, headers: bearer(web.token) });
    expect(httpStatusOf(res)).toBe(403);
    expect(JSON.parse(res.deniedResponse!.body).error).toBe('route_not_allowed');
  });

  it('expired, tampered, alg none, wrong secret: 401', async () => {
    const secrets = a.deps.config.GATEWAY_JWT_SECRET!;
    const expired = await signServiceToken(secrets, 'tollgate', {
      project: 'captionacc',
      service: 'api',
      routes: ['/captionacc/'],
      expiresAt: new Date(Date.now() - 120_000),
    });
    let res = await checkA({ path: PATH, headers: bearer(expired.token) });
    expect(httpStatusOf(res)).toBe(401);
    expect(JSON.parse(res.deniedResponse!.body).error).toBe('token_expired');

    const { token } = await issue();
    const [h, p, s] = token.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const tampered = `${h}.${b64url({ ...payload, service: 'orchestrator' })}.${s}`;
    expect(httpStatusOf(await checkA({ path: PATH, headers: bearer(tampered) }))).toBe(401);

    const none = `${b64url({ alg: 'none', typ: 'JWT', kid: 'new' })}.${p}.`;
    expect(httpStatusOf(await checkA({ path: PATH, headers: bearer(none) }))).toBe(401);
    const rs256 = `${b64url({ alg: 'RS256', typ: 'JWT', kid: 'new' })}.${p}.${s}`;
    expect(httpStatusOf(await checkA({ path: PATH, headers: bearer(rs256) }))).toBe(401);

    const forged = await signServiceToken([{ kid: 'new', secret: 'x'.repeat(40) }], 'tollgate', {
      project: 'captionacc',
      service: 'api',
      routes: ['/captionacc/'],
      expiresAt: new Date(Date.now() + 3600_000),
      jti: payload.jti,
    });
    res = await checkA({ path: PATH, headers: bearer(forged.token) });
    expect(httpStatusOf(res)).toBe(401);
    expect(headersOf(res.deniedResponse?.headers)['www-authenticate']).toBe('Bearer realm="tollgate", error="invalid_token"');
  });

  it('a well-signed token missing from the registry is refused', async () => {
    const secrets = a.deps.config.GATEWAY_JWT_SECRET!;
    const unregistered = await signServiceToken(secrets, 'tollgate', {
      project: 'captionacc',
      service: 'api',
      routes: ['/captionacc/'],
      expiresAt: new Date(Date.now() + 3600_000),
    });
    expect(httpStatusOf(await checkA({ path: PATH, headers: bearer(unregistered.token) }))).toBe(401);
  });

  it('revocation reaches a second replica within one second', async () => {
    const { token, record } = await issue();
    expect(httpStatusOf(await checkA({ path: PATH, headers: bearer(token) }))).toBe(200);
    expect(httpStatusOf(await checkB({ path: PATH, headers: bearer(token) }))).toBe(200);
    await revokeServiceToken(a.deps, record.jti, 'admin', 'service decommissioned');
    const start = Date.now();
    let seen = false;
    while (Date.now() - start < 1000) {
      const [ra, rb] = await Promise.all([checkA({ path: PATH, headers: bearer(token) }), checkB({ path: PATH, headers: bearer(token) })]);
      if (httpStatusOf(ra) === 401 && httpStatusOf(rb) === 401) {
        seen = true;
        expect(JSON.parse(rb.deniedResponse!.body).error).toBe('token_revoked');
        // Attributed to the token, so its usage shows the refusals (never billed: deny).
        expect(metadataOf(rb)).toMatchObject({ credential: 'service_token', token_id: record.jti, decision: 'deny', error_code: 'token_revoked' });
        break;
      }
      await sleep(10);
    }
    expect(seen).toBe(true);
  });

  it('secret rotation: tokens signed with either live secret verify; a retired secret does not', async () => {
    const secrets = a.deps.config.GATEWAY_JWT_SECRET!;
    const oldSecret = secrets.find((s) => s.kid === 'old')!;
    const fromOld = await signServiceToken([oldSecret], 'tollgate', {
      project: 'captionacc',
      service: 'api',
      routes: ['/captionacc/'],
      expiresAt: new Date(Date.now() + 3600_000),
    });
    await a.deps.tokenStore.insert({
      jti: fromOld.jti,
      project: 'captionacc',
      service: 'api',
      description: null,
      routes: ['/captionacc/'],
      kid: 'old',
      expiresAt: new Date(Date.now() + 3600_000),
      createdBy: 'admin',
    });
    const fromNew = await issue();
    expect(httpStatusOf(await checkA({ path: PATH, headers: bearer(fromOld.token) }))).toBe(200);
    expect(httpStatusOf(await checkA({ path: PATH, headers: bearer(fromNew.token) }))).toBe(200);
    // Replica b has already retired the old secret.
    expect(httpStatusOf(await checkB({ path: PATH, headers: bearer(fromOld.token) }))).toBe(401);
    expect(httpStatusOf(await checkB({ path: PATH, headers: bearer(fromNew.token) }))).toBe(200);
  });

  it('records last_used_at in batches', async () => {
    const { token, record } = await issue();
    await checkA({ path: PATH, headers: bearer(token) });
    await sleep(1300);
    expect((await a.deps.tokenStore.get(record.jti))?.lastUsedAt).toBeInstanceOf(Date);
  });

  it('never logs a token', async () => {
    const { token } = await issue();
    await checkA({ path: PATH, headers: bearer(token) });
    await checkA({ path: '/nope', headers: bearer(token) });
    await checkA({ path: PATH, headers: bearer(token.slice(0, -2) + 'xx') });
    expect(a.lines.join('')).not.toContain(token.split('.')[2]!);
  });
});

describe('service tokens through Envoy', () => {
  it('reaches the internal upstream with the prefix rewritten; no token, no entry; /ping needs none', async () => {
    const { token, record } = await issue();
    const res = await fetch(`${envoy.url}${PATH}?deep=1`, { headers: bearer(token) });
    expect(res.status).toBe(200);
    const echoed = await res.json();
    expect(echoed.path).toBe('/echo/api/health');
    expect(echoed.headers['x-service-project']).toBe('captionacc');
    expect(echoed.headers['x-token-id']).toBe(record.jti);
    expect(echoed.headers.authorization).toBeUndefined();
    expect((await fetch(`${envoy.url}${PATH}`)).status).toBe(401);
    expect((await fetch(`${envoy.url}/hello`, { headers: bearer(token) })).status).toBe(403);
    const ping = await fetch(`${envoy.url}/ping`);
    expect(ping.status).toBe(200);
    expect(await ping.text()).toBe('OK');
  });
});
