import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migrateBilling } from '@tollgate/usage-model';
import { seedBody, startTestApi, type TestApi } from './api-helpers.js';
import { TEST_ADMIN_TOKEN } from './helpers.js';

// Hostile input for the management API, driven by its own /openapi.json: every documented
// operation gets random and half-valid path parameters, queries and bodies. Whatever arrives,
// the answer is never a 5xx, every error is JSON {error, message}, and a refused call writes
// nothing (row counts of every table the API writes stay the same).
const infra = inject('infra');
let api: TestApi;
let doc: {
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { $ref?: string; properties?: Record<string, unknown> } }> } }>>;
  components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
};
let knownKeyId: string;

beforeAll(async () => {
  api = await startTestApi(infra, 'mgmt_fuzz', {
    GATEWAY_JWT_SECRET: 'fz:' + 'f'.repeat(40),
    VAULT_MASTER_KEYS: `mk:${Buffer.alloc(32, 9).toString('base64')}`,
  });
  await migrateBilling(api.deps.pool);
  knownKeyId = (await api.call('POST', '/api/keys', { body: seedBody('fuzz-user') })).body.id;
  doc = (await api.call('GET', '/openapi.json')).body;
});

afterAll(async () => {
  await api?.stop();
});

async function rowCounts(): Promise<string> {
  const r = await api.deps.pool.query(
    `select (select count(*) from api_keys) a, (select count(*) from audit_log) b, (select count(*) from idempotency_keys) c,
            (select count(*) from gateway_tokens) d, (select count(*) from provider_keys) e,
            (select coalesce(max(updated_at)::text, '') from api_keys) f, (select coalesce(max(updated_at)::text, '') from provider_keys) g`,
  );
  return JSON.stringify(r.rows[0]);
}

const junk = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom(
    '',
    ' ',
    '..',
    '%2e%2e',
    'key_',
    'key_AAAAAAAAAAAAAAAAAAAA',
    "'; drop table api_keys; --",
    '\u0000',
    '💥',
    'a'.repeat(300),
    'user123',
    'fuzz-user',
    'daily',
  ),
);
const value = fc.oneof(
  junk,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(junk, { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), junk, { maxKeys: 3 }),
  fc.constantFrom(-1, 0, 1, 2 ** 31, 1e308, '2027-01-01T00:00:00Z', 'not-a-date', ['read'], ['*'], { byok: true }),
);

function propertiesOf(op: { requestBody?: { content: Record<string, { schema: { $ref?: string; properties?: Record<string, unknown> } }> } }): string[] {
  const schema = op.requestBody?.content['application/json']?.schema;
  if (!schema) return [];
  const resolved = schema.$ref ? doc.components.schemas[schema.$ref.split('/').pop()!] : schema;
  return Object.keys(resolved?.properties ?? {});
}

describe('management API under hostile input', () => {
  it('never answers 5xx, always explains errors in JSON, and writes nothing when it refuses', async () => {
    const operations = Object.entries(doc.paths)
      .flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method: method.toUpperCase(), fields: propertiesOf(op) })))
      .filter((o) => o.path.startsWith('/api/'));
    expect(operations.length).toBeGreaterThan(15);

    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...operations),
        fc.array(fc.oneof(junk, fc.constant(knownKeyId)), { minLength: 3, maxLength: 3 }),
        fc.dictionary(fc.constantFrom('limit', 'cursor', 'active', 'from', 'to', 'granularity', 'user_id', 'unused_days', 'x'), junk, { maxKeys: 3 }),
        fc.oneof(
          fc.constant(undefined),
          fc.jsonValue(),
          fc.constant('{"broken json'),
          // Mostly-right bodies: the documented fields, with random values, sometimes an extra one.
          fc.tuple(fc.dictionary(fc.string({ maxLength: 10 }), value, { maxKeys: 2 }), fc.array(value, { minLength: 12, maxLength: 12 })),
        ),
        fc.constantFrom<string | null>(TEST_ADMIN_TOKEN, TEST_ADMIN_TOKEN, TEST_ADMIN_TOKEN, null, 'sk_garbage'),
        async (op, params, query, bodyShape, token) => {
          let i = 0;
          const path = op.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(String(params[i++ % params.length])));
          const qs = new URLSearchParams(query as Record<string, string>).toString();
          let body: unknown;
          let rawBody: string | undefined;
          if (bodyShape === '{"broken json') rawBody = bodyShape;
          else if (Array.isArray(bodyShape) && bodyShape.length === 2 && Array.isArray(bodyShape[1])) {
            const [extra, values] = bodyShape as [Record<string, unknown>, unknown[]];
            body = { ...Object.fromEntries(op.fields.map((f, j) => [f, values[j % values.length]])), ...extra };
          } else body = bodyShape;
          // fetch cannot send a body with GET.
          if (op.method === 'GET') {
            body = undefined;
            rawBody = undefined;
          }
          const before = await rowCounts();
          const res = await api.call(op.method, `${path}${qs ? `?${qs}` : ''}`, { token, body, rawBody });
          expect(res.status, `${op.method} ${path} answered ${res.status}: ${res.text.slice(0, 200)}`).toBeLessThan(500);
          if (res.status >= 400) {
            expect(typeof res.body.error, res.text).toBe('string');
            expect(typeof res.body.message, res.text).toBe('string');
            expect(await rowCounts(), `${op.method} ${path} → ${res.status} changed rows`).toBe(before);
          }
        },
      ),
      { numRuns: 400 },
    );
  }, 120_000);
});

describe('text Postgres cannot store, and methods a path does not have', () => {
  it.each([
    ['a NUL in a metadata value', 'POST', '/api/keys', { user_id: 'text-user', name: 'n', metadata: { note: 'a\u0000b' } }, 'body.metadata.note'],
    ['an unpaired surrogate in a metadata key', 'POST', '/api/keys', { user_id: 'text-user', name: 'n', metadata: { ['k\uD800']: 'v' } }, 'body.metadata.k?'],
    ['a NUL in a name', 'POST', '/api/keys', { user_id: 'text-user', name: 'x\u0000' }, 'body.name'],
    ['a NUL in a query parameter', 'GET', '/api/keys?user_id=%00', undefined, 'query.user_id'],
  ])('%s: 400 invalid_request naming the field, nothing written', async (_what, method, url, body, field) => {
    const before = await rowCounts();
    const res = await api.call(method, url, { body });
    expect(res.status, res.text).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', request_id: expect.any(String) });
    expect(res.body.message).toContain(field);
    expect(await rowCounts()).toBe(before);
  });

  it('a paired surrogate (an emoji) is stored as usual', async () => {
    const res = await api.call('POST', '/api/keys', { body: { user_id: 'text-user', name: 'emoji', metadata: { note: 'ok 💥' } } });
    expect(res.status, res.text).toBe(201);
    expect(res.body.metadata).toEqual({ note: 'ok 💥' });
  });

  it('an undeclared method on a path the API has: 405 with Allow; on an unknown path: 404', async () => {
    const put = await api.call('PUT', '/api/keys');
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD, POST');
    expect(put.body).toMatchObject({ error: 'method_not_allowed', request_id: expect.any(String) });
    const trace = await api.call('PUT', `/api/keys/${knownKeyId}`);
    expect(trace.status).toBe(405);
    expect(trace.headers.get('allow')).toContain('DELETE');
    expect((await api.call('GET', '/api/no-such-thing')).status).toBe(404);
  });

  it('/api/keys/<x> allows what <x> is: a key id PATCH and DELETE, a user id GET; the other kind is 405', async () => {
    const onKey = await api.call('OPTIONS', `/api/keys/${knownKeyId}`);
    expect(onKey.status).toBe(405);
    expect(onKey.headers.get('allow')).toBe('DELETE, PATCH');
    const onUser = await api.call('OPTIONS', '/api/keys/fuzz-user');
    expect(onUser.headers.get('allow')).toBe('GET, HEAD');
    // Each method on the other kind of path: 405 with that path's Allow, saying why.
    const listKeyShaped = await api.call('GET', `/api/keys/${knownKeyId}`);
    expect(listKeyShaped.status).toBe(405);
    expect(listKeyShaped.headers.get('allow')).toBe('DELETE, PATCH');
    expect(listKeyShaped.body.message).toContain('/api/keys/by-id/');
    const patchUser = await api.call('PATCH', '/api/keys/fuzz-user', { body: { name: 'x' } });
    expect(patchUser.status).toBe(405);
    expect(patchUser.headers.get('allow')).toBe('GET, HEAD');
    expect(patchUser.body.message).toContain('key ids look like');
    // A path no route takes as it is (a malformed id under /api/keys/:id/…): still the 400 naming it.
    const malformed = await api.call('POST', '/api/keys/not-a-key-id/revoke', { body: {} });
    expect(malformed.status).toBe(400);
    expect(malformed.body.details[0].field).toBe('path.id');
  });

  it('QUERY, which Fastify parses as a method with a body, is 405 too (with or without Content-Type)', async () => {
    const bare = await api.call('QUERY', '/api/keys');
    expect(bare.status).toBe(405);
    expect(bare.headers.get('allow')).toBe('GET, HEAD, POST');
    expect(bare.body).toMatchObject({ error: 'method_not_allowed' });
    const typed = await api.call('QUERY', '/health', { body: {} });
    expect(typed.status).toBe(405);
    expect((await api.call('QUERY', '/api/no-such-thing')).status).toBe(404);
  });
});

describe('instants Postgres reads differently from ISO 8601', () => {
  it('an audit-events range with an offset past ±15:59 is answered, not a 500', async () => {
    const res = await api.call(
      'GET',
      `/api/audit-events?since=${encodeURIComponent('2020-01-01T00:00:00-17:57')}&until=${encodeURIComponent('5514-01-07T15:12:02.934-17:57')}`,
    );
    expect(res.status, res.text).toBe(200);
    expect(Array.isArray(res.body.data)).toBe(true);
  });
});

describe('usage ranges the schema cannot express', () => {
  it.each([
    ['from after to', '?from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z', 'query.from', 'before'],
    ['more than 400 days', '?from=0&to=2030-01-01T00:00:00Z', 'query.from', '400 days'],
    ['ending past 9999', '?from=9999-12-30T00:00:00Z&to=9999-12-31T23:30:00Z', 'query.to', '9999'],
  ])('%s: 400 invalid_request naming the field, on every usage read', async (_name, range, field, words) => {
    for (const path of ['/api/usage/fuzz-user', `/api/keys/${knownKeyId}/usage`, '/api/usage/fuzz-user/series', '/api/overview']) {
      const res = await api.call('GET', `${path}${range}`);
      expect(res.status, `${path}: ${res.text}`).toBe(400);
      expect(res.body).toMatchObject({ error: 'invalid_request', details: [expect.objectContaining({ field })] });
      expect(res.body.message).toContain(words);
    }
  });

  it('Unix seconds beyond 11 digits are refused by the schema (every answer stays a four-digit year)', async () => {
    const res = await api.call('GET', '/api/usage/fuzz-user/series?to=740665322238');
    expect(res.status).toBe(400);
    expect(res.body.details[0].field).toBe('query.to');
  });
});

describe('request bodies as a client sends them', () => {
  it('a service token without expires_in_days: optional in /openapi.json, and the token lasts 90 days', async () => {
    expect(doc.components.schemas.CreateTokenRequest).toMatchObject({ required: ['project', 'service'] });
    const res = await api.call('POST', '/api/tokens', { body: { project: 'fuzz', service: 'api' } });
    expect(res.status, res.text).toBe(201);
    const days = (Date.parse(res.body.expires_at) - Date.parse(res.body.created_at)) / 86_400_000;
    expect(Math.round(days)).toBe(90);
  });

  it('an empty ?unused_days= is no number: 400, not a filter for 0 days', async () => {
    const res = await api.call('GET', '/api/tokens?unused_days=');
    expect(res.status).toBe(400);
    expect(res.body.details[0].field).toBe('query.unused_days');
  });

  it('the Stripe webhook documents the Stripe-Signature header it requires', () => {
    const op = (doc.paths['/webhooks/stripe'] as any).post;
    expect(op.parameters).toContainEqual(expect.objectContaining({ name: 'Stripe-Signature', in: 'header', required: true }));
  });
});
