import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { deny, publishedMetadata, type Allow, type CheckInput, type Decision, type Deny } from '../src/check/decision.js';
import { KeyStoreUnavailableError } from '../src/check/key-resolver.js';
import { checksumOf, corruptChecksum } from '../src/domain/key-format.js';
import { PlanCatalog } from '../src/domain/plans.js';
import { apiKey, checkerWith, FakeProviders, FakeTokens, type CheckerFixture } from './checker-fakes.js';

// Every branch of the Check decision (check/checker.ts) against in-memory fakes: what each
// credential, key state, scope, provider answer and limiter answer turns into. The same paths
// through gRPC and Envoy are covered by check.int.test.ts and envoy.int.test.ts.

const KEY_BODY = 'sk_abcdefghijklmnopqrstuvwx';
const KEY = `${KEY_BODY}${checksumOf(KEY_BODY)}`;
const NOW = new Date('2026-06-01T12:00:00Z');
const CREDENTIAL_HEADERS = ['authorization', 'x-api-key', 'x-service-project', 'x-service-name', 'x-token-id'];

const request = (over: Partial<CheckInput> = {}): CheckInput => ({
  method: 'GET',
  path: '/v1/things',
  headers: { authorization: `Bearer ${KEY}` },
  ...over,
});

/** A Checker that knows KEY (stored under the hasher's newest hash) as `key`. */
function withKey(key = apiKey(), opts: Parameters<typeof checkerWith>[0] = {}): CheckerFixture {
  const f = checkerWith(opts);
  f.resolver.add(f.hasher.primary(KEY), key);
  return f;
}

function denied(d: Decision): Deny {
  if (d.allow) throw new Error(`expected a denial, got an allow (${d.outcome})`);
  return d;
}

function allowed(d: Decision): Allow {
  if (!d.allow) throw new Error(`expected an allow, got ${d.status} ${d.error}: ${d.message}`);
  return d;
}

const REALM = 'Bearer realm="tollgate"';
const INVALID_TOKEN = `${REALM}, error="invalid_token"`;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'], now: NOW });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Checker: path parameters', () => {
  it.each(['/v1/things;jsessionid=1', '/v1/things%3bx', '/reports/..%3B/admin'])(
    'refuses %s with 400 invalid_path before reading the credential',
    async (path) => {
      const f = withKey();
      const d = denied(await f.checker.check(request({ path, headers: {} })));
      expect(d).toMatchObject({ status: 400, error: 'invalid_path', outcome: 'path_parameters', headers: {} });
      expect(d.metadata).toBeUndefined();
      expect(f.resolver.calls).toEqual([]);
    },
  );

  it('accepts a ";" in the query string (it is not part of the path)', async () => {
    const f = withKey();
    allowed(await f.checker.check(request({ path: '/v1/things?a=1;b=2' })));
  });
});

describe('Checker: credentials', () => {
  it('no credential: 401 missing_credential with a bare RFC 6750 challenge', async () => {
    const f = withKey();
    const d = denied(await f.checker.check(request({ headers: {} })));
    expect(d).toMatchObject({ status: 401, error: 'missing_credential', outcome: 'missing_credential', headers: { 'www-authenticate': REALM } });
    // No one to attribute it to: the verdict alone, which billing counts as an unattributed refusal.
    expect(publishedMetadata(d)).toEqual({ decision: 'deny', error_code: 'missing_credential' });
    expect(f.resolver.calls).toEqual([]);
  });

  it.each([
    ['an Authorization header that is not Bearer', { authorization: `Basic ${KEY}` }],
    ['two different credentials', { authorization: `Bearer ${KEY}`, 'x-api-key': corruptChecksum(KEY) }],
    ['X-API-Key repeated (joined by a comma)', { 'x-api-key': `${KEY},${KEY}` }],
  ])('%s: 401 invalid_credential', async (_, headers) => {
    const f = withKey();
    const d = denied(await f.checker.check(request({ headers })));
    expect(d).toMatchObject({ status: 401, error: 'invalid_credential', headers: { 'www-authenticate': INVALID_TOKEN } });
    expect(f.resolver.calls).toEqual([]);
  });

  it('reads the key from X-API-Key as well as Authorization', async () => {
    const f = withKey();
    expect(allowed(await f.checker.check(request({ headers: { 'x-api-key': KEY } }))).metadata.key_id).toBe('key_1');
  });

  it('a JWT without a token checker: 401 invalid_token, and the key store is not asked', async () => {
    const f = withKey();
    const d = denied(await f.checker.check(request({ headers: { authorization: 'Bearer aaa.bbb.ccc' } })));
    expect(d).toMatchObject({ status: 401, error: 'invalid_token', message: 'Service tokens are not accepted by this gateway' });
    expect(f.resolver.calls).toEqual([]);
  });

  it('a JWT with a token checker: its decision is the answer, unchanged', async () => {
    const answer = deny(403, 'route_not_allowed', 'not this route', { metadata: { credential: 'service_token', token_id: 't1' } });
    const tokens = new FakeTokens(answer);
    const f = withKey(apiKey(), { tokens });
    const input = request({ headers: { authorization: 'Bearer aaa.bbb.ccc' } });
    expect(await f.checker.check(input)).toBe(answer);
    expect(tokens.calls).toEqual([{ token: 'aaa.bbb.ccc', input }]);
    expect(f.resolver.calls).toEqual([]);
    expect(f.limiter.calls).toEqual([]);
  });

  it.each([
    ['a bad checksum', corruptChecksum(KEY), 'invalid_bad_checksum', 'The API key is not valid (its checksum does not match: a typo?)'],
    ['a malformed key', 'sk_tooshort', 'invalid_malformed', 'The API key is not valid (malformed)'],
    ['a key longer than 64 characters', `sk_${'a'.repeat(70)}`, 'invalid_malformed', 'The API key is not valid (malformed)'],
    [
      'a prefix this gateway does not accept',
      `pk_abcdefghijklmnopqrstuvwx${checksumOf('pk_abcdefghijklmnopqrstuvwx')}`,
      'invalid_unknown_prefix',
      'The API key is not valid (malformed)',
    ],
  ])('%s: 401 invalid_api_key without a lookup', async (_, presented, outcome, message) => {
    const f = withKey();
    const d = denied(await f.checker.check(request({ headers: { authorization: `Bearer ${presented}` } })));
    expect(d).toMatchObject({ status: 401, error: 'invalid_api_key', outcome, message, headers: { 'www-authenticate': INVALID_TOKEN } });
    expect(f.resolver.calls).toEqual([]);
  });

  it('accepts every configured prefix', async () => {
    const body = 'pk_abcdefghijklmnopqrstuvwx';
    const other = `${body}${checksumOf(body)}`;
    const f = checkerWith({ settings: { acceptedPrefixes: ['sk', 'pk'] } });
    f.resolver.add(f.hasher.primary(other), apiKey());
    allowed(await f.checker.check(request({ headers: { authorization: `Bearer ${other}` } })));
  });

  it('an unknown key: 401 invalid_api_key after looking up every candidate hash', async () => {
    const f = checkerWith();
    const d = denied(await f.checker.check(request()));
    expect(d).toMatchObject({ status: 401, error: 'invalid_api_key', outcome: 'unknown_key', message: 'The API key is not valid (unknown key)' });
    expect(f.resolver.calls).toEqual([f.hasher.candidates(KEY)]);
    expect(publishedMetadata(d)).toEqual({ decision: 'deny', error_code: 'invalid_api_key' });
  });

  it('a key found under an older hash secret is the key', async () => {
    const f = checkerWith();
    f.resolver.add(f.hasher.candidates(KEY)[1]!, apiKey());
    expect(allowed(await f.checker.check(request())).metadata.key_id).toBe('key_1');
  });

  it('a rotated key inside its grace period is allowed', async () => {
    const f = checkerWith();
    f.resolver.add(f.hasher.primary(KEY), apiKey({ previousKeyExpiresAt: new Date(NOW.getTime() + 1) }), 'previous');
    expect(allowed(await f.checker.check(request())).outcome).toBe('allowed');
  });

  it.each([
    ['ended exactly now', new Date(NOW.getTime())],
    ['ended a second ago', new Date(NOW.getTime() - 1_000)],
    ['has no end recorded', null],
  ])('a rotated key whose grace %s: 401 rotated_key_expired', async (_, previousKeyExpiresAt) => {
    const f = checkerWith();
    f.resolver.add(f.hasher.primary(KEY), apiKey({ previousKeyExpiresAt }), 'previous');
    const d = denied(await f.checker.check(request()));
    expect(d).toMatchObject({
      status: 401,
      error: 'invalid_api_key',
      outcome: 'rotated_key_expired',
      message: 'The API key was rotated and its grace period has ended',
    });
    // The old secret still names its key: the refusal counts on that key's chart.
    expect(publishedMetadata(d)).toEqual({ credential: 'api_key', user_id: 'user_1', key_id: 'key_1', decision: 'deny', error_code: 'invalid_api_key' });
    expect(f.usage.recorded).toEqual([]);
  });

  it('the grace period is checked on every request, not once per lookup', async () => {
    const f = checkerWith();
    f.resolver.add(f.hasher.primary(KEY), apiKey({ previousKeyExpiresAt: new Date(NOW.getTime() + 1_000) }), 'previous');
    allowed(await f.checker.check(request()));
    vi.setSystemTime(NOW.getTime() + 1_000);
    expect(denied(await f.checker.check(request())).outcome).toBe('rotated_key_expired');
  });
});

describe('Checker: key store outage', () => {
  it('KeyStoreUnavailableError: 503 unavailable with Retry-After, never a 401', async () => {
    const f = checkerWith();
    f.resolver.failWith = new KeyStoreUnavailableError(new Error('connection refused'));
    const d = denied(await f.checker.check(request()));
    expect(d).toEqual({
      allow: false,
      status: 503,
      error: 'unavailable',
      message: 'The key store is unavailable; try again shortly',
      headers: { 'retry-after': '1' },
      metadata: undefined,
      outcome: 'key_store_unavailable',
    });
  });

  it('any other error from the resolver is not turned into a decision', async () => {
    const f = checkerWith();
    f.resolver.failWith = new TypeError('a bug');
    await expect(f.checker.check(request())).rejects.toThrow('a bug');
  });
});

describe('Checker: key states', () => {
  it.each([
    ['revoked', { revokedAt: new Date('2026-05-01T00:00:00Z') }, 'key_revoked', 'The API key has been revoked'],
    [
      'revoked (even if also disabled and expired)',
      { revokedAt: new Date('2026-05-01T00:00:00Z'), isActive: false, expiresAt: new Date('2026-01-01T00:00:00Z') },
      'key_revoked',
      'The API key has been revoked',
    ],
    ['expired just now', { expiresAt: new Date(NOW.getTime()) }, 'key_expired', 'The API key has expired'],
    ['disabled', { isActive: false }, 'key_inactive', 'The API key is disabled'],
  ])('%s: 401 %s', async (_, over, error, message) => {
    const f = withKey(apiKey(over));
    const d = denied(await f.checker.check(request()));
    expect(d).toMatchObject({ status: 401, error, message, outcome: error, headers: { 'www-authenticate': INVALID_TOKEN } });
    // A known key's refusal is attributed to it (its chart and its owner's), and marked deny: never billed.
    expect(publishedMetadata(d)).toEqual({ credential: 'api_key', user_id: 'user_1', key_id: 'key_1', decision: 'deny', error_code: error });
    expect(f.limiter.calls).toEqual([]);
    expect(f.usage.recorded).toEqual([]);
  });

  it('suspended for billing: 402 billing_suspended, attributed to the key and its customer', async () => {
    const f = withKey(apiKey({ billingSuspendedAt: new Date('2026-05-01T00:00:00Z'), stripeCustomerId: 'cus_1' }));
    const d = denied(await f.checker.check(request()));
    expect(d).toMatchObject({ status: 402, error: 'billing_suspended' });
    expect(publishedMetadata(d)).toEqual({
      credential: 'api_key',
      user_id: 'user_1',
      key_id: 'key_1',
      stripe_customer_id: 'cus_1',
      decision: 'deny',
      error_code: 'billing_suspended',
    });
    expect(f.limiter.calls).toEqual([]);
  });

  it('a key that expires a millisecond from now is still active', async () => {
    const f = withKey(apiKey({ expiresAt: new Date(NOW.getTime() + 1) }));
    allowed(await f.checker.check(request()));
  });
});

describe('Checker: service-token-only routes', () => {
  const settings = { serviceTokenRoutes: [{ prefix: '/internal/', project: 'ops' }] };
  const challenge = `${REALM}, error="insufficient_scope", scope="service_route:/internal/"`;

  it.each(['/internal/jobs', '/internal', '/INTERNAL/jobs'])('an API key with "*" on %s: 403 service_token_required', async (path) => {
    const f = withKey(apiKey({ scopes: ['*'] }), { settings });
    const d = denied(await f.checker.check(request({ path })));
    expect(d).toMatchObject({
      status: 403,
      error: 'service_token_required',
      message: `${path} is for service tokens only; an API key needs the "service_route:/internal/" scope`,
      headers: { 'www-authenticate': challenge },
      metadata: { credential: 'api_key', user_id: 'user_1', key_id: 'key_1' },
    });
    expect(f.limiter.calls).toEqual([]);
  });

  it('a key holding service_route:/internal/ passes (and still needs the route scope)', async () => {
    const f = withKey(apiKey({ scopes: ['service_route:/internal/', 'read'] }), { settings });
    allowed(await f.checker.check(request({ path: '/internal/jobs' })));
    expect(denied(await f.checker.check(request({ path: '/internal/jobs', method: 'POST' }))).error).toBe('insufficient_scope');
  });

  it('service_route: grants whole segments only', async () => {
    const f = withKey(apiKey({ scopes: ['*', 'service_route:/intern'] }), { settings });
    expect(denied(await f.checker.check(request({ path: '/internal/jobs' }))).error).toBe('service_token_required');
  });

  it('paths beside the route are not affected', async () => {
    const f = withKey(apiKey({ scopes: ['*'] }), { settings });
    allowed(await f.checker.check(request({ path: '/internal-docs/x' })));
  });
});

describe('Checker: scopes', () => {
  it('a read-only key writing: 403 insufficient_scope naming the scope', async () => {
    const f = withKey(apiKey({ scopes: ['read'] }));
    const d = denied(await f.checker.check(request({ method: 'post', path: '/v1/things?x=1' })));
    expect(d).toMatchObject({
      status: 403,
      error: 'insufficient_scope',
      outcome: 'insufficient_scope',
      message: 'This API key lacks the "write" scope needed for POST /v1/things',
      headers: { 'www-authenticate': `${REALM}, error="insufficient_scope", scope="write"` },
      metadata: { credential: 'api_key', user_id: 'user_1', key_id: 'key_1' },
    });
    expect(f.limiter.calls).toEqual([]);
    expect(f.usage.recorded).toEqual([]);
  });

  it('a plan with scopes limits the key’s: a full_access key on a read plan cannot write', async () => {
    const plans = new PlanCatalog(
      [
        {
          name: 'reader',
          rateLimitPerMinute: null,
          rateLimitPerDay: null,
          monthlyQuota: null,
          scopes: ['read'],
          stripePrice: 'price_r',
          stripeLookupKey: null,
        },
      ],
      { perMinute: null, perDay: null },
    );
    const f = withKey(apiKey({ scopes: ['*'], plan: 'reader' }), { settings: { plans } });
    expect(allowed(await f.checker.check(request({ method: 'GET' }))).upstreamHeaders['x-api-key-scopes']).toBe('read');
    expect(denied(await f.checker.check(request({ method: 'POST' }))).error).toBe('insufficient_scope');
  });

  it('write does not imply read', async () => {
    const f = withKey(apiKey({ scopes: ['write'] }));
    expect(denied(await f.checker.check(request({ method: 'GET' }))).message).toContain('"read" scope');
  });

  it('a ROUTE_SCOPES rule names the scope a path needs', async () => {
    const f = withKey(apiKey({ scopes: ['read', 'write'] }), { settings: { routeScopes: [{ prefix: '/admin/', scope: 'admin' }] } });
    expect(denied(await f.checker.check(request({ path: '/Admin/users' }))).headers['www-authenticate']).toContain('scope="admin"');
    allowed(await f.checker.check(request({ path: '/administration' })));
  });

  it.each([
    ['/reports', true],
    ['/reports/2026/q1', true],
    ['/reports-admin', false],
    ['/Reports/2026', false],
    ['/other', false],
  ])('read:/reports/ on GET %s: allowed=%s', async (path, ok) => {
    const f = withKey(apiKey({ scopes: ['read:/reports/'] }));
    const d = await f.checker.check(request({ path }));
    expect(d.allow).toBe(ok);
    if (!d.allow) expect(d.error).toBe('insufficient_scope');
  });

  it('a permission set adds its scopes to the key’s own, listed upstream', async () => {
    const f = withKey(apiKey({ permissionSet: 'read_only', scopes: ['write:/uploads/'] }));
    expect(allowed(await f.checker.check(request())).upstreamHeaders['x-api-key-scopes']).toBe('read write:/uploads/');
    allowed(await f.checker.check(request({ method: 'PUT', path: '/uploads/a' })));
    expect(denied(await f.checker.check(request({ method: 'PUT', path: '/v1/things' }))).error).toBe('insufficient_scope');
  });

  it('an unknown permission set grants nothing', async () => {
    const f = withKey(apiKey({ permissionSet: 'gone', scopes: [] }));
    expect(denied(await f.checker.check(request())).error).toBe('insufficient_scope');
  });
});

describe('Checker: provider injection', () => {
  it('the provider’s headers reach the upstream beside the identity', async () => {
    const providers = new FakeProviders({ headers: { 'x-provider': 'daily', 'x-provider-auth': 'Bearer provider-secret' } });
    const key = apiKey();
    const f = withKey(key, { providers });
    const input = request({ path: '/api/rooms/1?x=y' });
    const a = allowed(await f.checker.check(input));
    expect(a.upstreamHeaders).toEqual({
      'x-user-id': 'user_1',
      'x-api-key-id': 'key_1',
      'x-api-key-scopes': '*',
      'x-provider': 'daily',
      'x-provider-auth': 'Bearer provider-secret',
    });
    expect(providers.calls).toEqual([{ key, input, path: '/api/rooms/1' }]);
    expect(f.usage.recorded).toEqual(['key_1']);
  });

  it('the provider’s denial is the answer, with the key’s metadata, before any rate limit', async () => {
    const refusal = deny(400, 'provider_required', 'This route needs a provider: send X-Provider');
    const f = withKey(apiKey({ rateLimitPerMinute: 10, stripeCustomerId: 'cus_1' }), { providers: new FakeProviders(refusal) });
    const d = denied(await f.checker.check(request()));
    expect(d).toEqual({ ...refusal, metadata: { credential: 'api_key', user_id: 'user_1', key_id: 'key_1', stripe_customer_id: 'cus_1' } });
    expect(publishedMetadata(d)).toEqual({
      credential: 'api_key',
      user_id: 'user_1',
      key_id: 'key_1',
      stripe_customer_id: 'cus_1',
      decision: 'deny',
      error_code: 'provider_required',
    });
    expect(f.limiter.calls).toEqual([]);
    expect(f.usage.recorded).toEqual([]);
  });

  it('a key without scope for the route never reaches the provider', async () => {
    const providers = new FakeProviders({ headers: { 'x-provider-auth': 'Bearer provider-secret' } });
    const f = withKey(apiKey({ scopes: ['read'] }), { providers });
    denied(await f.checker.check(request({ method: 'POST' })));
    expect(providers.calls).toEqual([]);
  });
});

describe('Checker: rate limits', () => {
  const minute = { limit: 10, remaining: 9, resetMs: 29_001 };
  const day = { limit: 1000, remaining: 5, resetMs: 3_600_000 };

  it('no limit on the key and no default: the limiter is not called and no headers are added', async () => {
    const f = withKey();
    const a = allowed(await f.checker.check(request()));
    expect(f.limiter.calls).toEqual([]);
    expect(a.responseHeaders).toEqual({});
    expect(a.outcome).toBe('allowed');
  });

  it('the key’s own limits win over the defaults, which fill in what the key leaves unset', async () => {
    const f = withKey(apiKey({ rateLimitPerMinute: 5 }), { settings: { plans: new PlanCatalog([], { perMinute: 60, perDay: 1000 }) } });
    allowed(await f.checker.check(request()));
    expect(f.limiter.calls).toEqual([{ keyId: 'key_1', limits: { perMinute: 5, perDay: 1000 } }]);
  });

  it('a key without limits of its own gets its plan’s; its own override the plan’s; a plan not configured is none', async () => {
    const plans = new PlanCatalog(
      [{ name: 'pro', rateLimitPerMinute: 600, rateLimitPerDay: null, monthlyQuota: 9000, scopes: null, stripePrice: 'price_pro', stripeLookupKey: null }],
      { perMinute: 60, perDay: 1000 },
    );
    const onPlan = withKey(apiKey({ plan: 'pro' }), { settings: { plans } });
    allowed(await onPlan.checker.check(request()));
    expect(onPlan.limiter.calls).toEqual([{ keyId: 'key_1', limits: { perMinute: 600, perDay: 1000, monthlyQuota: 9000 } }]);
    const overridden = withKey(apiKey({ plan: 'pro', rateLimitPerMinute: 5, monthlyQuota: 10 }), { settings: { plans } });
    allowed(await overridden.checker.check(request()));
    expect(overridden.limiter.calls).toEqual([{ keyId: 'key_1', limits: { perMinute: 5, perDay: 1000, monthlyQuota: 10 } }]);
    const gone = withKey(apiKey({ plan: 'retired' }), { settings: { plans } });
    allowed(await gone.checker.check(request()));
    expect(gone.limiter.calls).toEqual([{ keyId: 'key_1', limits: { perMinute: 60, perDay: 1000 } }]);
  });

  it('allowed: the rate-limit headers of the tightest window go to the client', async () => {
    const f = withKey(apiKey({ rateLimitPerMinute: 10, rateLimitPerDay: 1000 }));
    f.limiter.answer = { allowed: true, minute, day, retryAfterMs: 0 };
    const a = allowed(await f.checker.check(request()));
    expect(a.responseHeaders).toEqual({
      'x-ratelimit-limit': '1000',
      'x-ratelimit-remaining': '5',
      'x-ratelimit-reset': '3600',
      'ratelimit-policy': '"minute";q=10;w=60, "day";q=1000;w=86400',
      ratelimit: '"day";r=5;t=3600',
    });
    expect(a.outcome).toBe('allowed');
    expect(f.usage.recorded).toEqual(['key_1']);
  });

  it.each([
    [1_500, '2'],
    [1_000, '1'],
    [0, '1'],
  ])('over the limit (retry in %i ms): 429 rate_limited with Retry-After %s', async (retryAfterMs, retryAfter) => {
    const f = withKey(apiKey({ rateLimitPerMinute: 10 }));
    f.limiter.answer = { allowed: false, minute: { limit: 10, remaining: 0, resetMs: 1_500 }, day: null, retryAfterMs };
    const d = denied(await f.checker.check(request()));
    expect(d).toEqual({
      allow: false,
      status: 429,
      error: 'rate_limited',
      message: `Rate limit exceeded; retry in ${retryAfter} s`,
      headers: {
        'x-ratelimit-limit': '10',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': '2',
        'ratelimit-policy': '"minute";q=10;w=60',
        ratelimit: '"minute";r=0;t=2',
        'retry-after': retryAfter,
      },
      metadata: { credential: 'api_key', user_id: 'user_1', key_id: 'key_1' },
      outcome: 'rate_limited',
    });
    expect(f.usage.recorded).toEqual([]);
  });

  it('limiter down, failure mode open: allowed_fail_open, counted and logged without the key', async () => {
    const f = withKey(apiKey({ rateLimitPerMinute: 10 }), { settings: { failureMode: 'open' } });
    f.limiter.answer = new Error('ETIMEDOUT');
    const a = allowed(await f.checker.check(request()));
    expect(a.outcome).toBe('allowed_fail_open');
    expect(a.responseHeaders).toEqual({});
    expect(f.redisFailures.value).toBe(1);
    expect(f.usage.recorded).toEqual(['key_1']);
    expect(f.logger.lines).toEqual([['warn', { err: 'ETIMEDOUT', keyId: 'key_1' }, 'rate limiter unavailable; failing open']]);
    expect(JSON.stringify(f.logger.lines)).not.toContain(KEY);
  });

  it('limiter down, failure mode closed: 503 unavailable with Retry-After', async () => {
    const f = withKey(apiKey({ rateLimitPerMinute: 10 }), { settings: { failureMode: 'closed' } });
    f.limiter.answer = new Error('ETIMEDOUT');
    const d = denied(await f.checker.check(request()));
    expect(d).toEqual({
      allow: false,
      status: 503,
      error: 'unavailable',
      message: 'Rate limiting is unavailable; try again shortly',
      headers: { 'retry-after': '1' },
      metadata: { credential: 'api_key', user_id: 'user_1', key_id: 'key_1' },
      outcome: 'rate_limiter_unavailable',
    });
    expect(f.redisFailures.value).toBe(1);
    expect(f.usage.recorded).toEqual([]);
    expect(f.logger.lines).toEqual([['warn', { err: 'ETIMEDOUT', keyId: 'key_1' }, 'rate limiter unavailable; failing closed']]);
  });
});

describe('Checker: what an allowed request carries', () => {
  it('upstream gets the identity, never the key; every credential header is removed', async () => {
    const f = withKey(apiKey({ scopes: ['read', 'write'] }));
    const a = allowed(await f.checker.check(request({ headers: { authorization: `Bearer ${KEY}`, 'x-api-key': KEY, 'x-user-id': 'spoofed' } })));
    expect(a.upstreamHeaders).toEqual({ 'x-user-id': 'user_1', 'x-api-key-id': 'key_1', 'x-api-key-scopes': 'read write' });
    expect(JSON.stringify(a)).not.toContain(KEY);
    expect(a.removeHeaders).toEqual(CREDENTIAL_HEADERS);
  });

  it('publishes the identity (with the Stripe customer when there is one) and the verdict', async () => {
    const f = withKey(apiKey({ stripeCustomerId: 'cus_1' }));
    const a = allowed(await f.checker.check(request()));
    expect(a.metadata).toEqual({ credential: 'api_key', user_id: 'user_1', key_id: 'key_1', stripe_customer_id: 'cus_1' });
    expect(publishedMetadata(a)).toEqual({ credential: 'api_key', user_id: 'user_1', key_id: 'key_1', stripe_customer_id: 'cus_1', decision: 'allow' });
  });

  it('no Stripe customer: no stripe_customer_id field at all', async () => {
    const f = withKey();
    expect(allowed(await f.checker.check(request())).metadata).toEqual({ credential: 'api_key', user_id: 'user_1', key_id: 'key_1' });
  });

  it('a refusal after the key is known publishes the identity, the verdict and the code', async () => {
    const f = withKey(apiKey({ scopes: [] }));
    expect(publishedMetadata(denied(await f.checker.check(request())))).toEqual({
      credential: 'api_key',
      user_id: 'user_1',
      key_id: 'key_1',
      decision: 'deny',
      error_code: 'insufficient_scope',
    });
  });

  it('records one use per allowed request', async () => {
    const f = withKey();
    allowed(await f.checker.check(request()));
    allowed(await f.checker.check(request()));
    expect(f.usage.recorded).toEqual(['key_1', 'key_1']);
  });
});
