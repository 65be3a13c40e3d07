import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { registeredRoutes } from '../src/http/api.js';
import { openApiPath } from '../src/http/openapi.js';
import { renderOpenApiDocument } from '../src/http/openapi-offline.js';
import { seedBody, startTestApi, type ApiAnswer, type TestApi } from './api-helpers.js';

// /openapi.json is generated from the handlers' zod schemas; this checks it against the live
// API: every served route is documented, and real answers validate against the documented schemas.
const infra = inject('infra');
let api: TestApi;
let doc: any;
let ajv: Ajv2020;
const DOC_ID = 'tollgate-openapi.json';

beforeAll(async () => {
  api = await startTestApi(infra, 'openapi');
  const r = await api.call('GET', '/openapi.json', { token: null });
  expect(r.status).toBe(200);
  doc = r.body;
  ajv = new Ajv2020({ strict: false, validateSchema: false, allErrors: true });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  ajv.addSchema(doc, DOC_ID);
});

afterAll(async () => {
  await api?.stop();
});

/** Validates a live answer against the schema documented for its route and status. */
function expectDocumented(method: string, path: string, answer: ApiAnswer) {
  const operation = doc.paths[path]?.[method.toLowerCase()];
  expect(operation, `${method} ${path} is documented`).toBeDefined();
  const response = operation.responses[String(answer.status)];
  expect(response, `${method} ${path} documents status ${answer.status}`).toBeDefined();
  const ref: string = response.content['application/json'].schema.$ref;
  const validate = ajv.getSchema(`${DOC_ID}${ref}`)!;
  const ok = validate(answer.body);
  expect(validate.errors ?? [], `${method} ${path} ${answer.status}: ${JSON.stringify(answer.body).slice(0, 300)}`).toEqual([]);
  expect(ok).toBe(true);
}

describe('/openapi.json', () => {
  it('is an OpenAPI 3.1 document with bearer security', () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info.title).toBeTruthy();
    expect(doc.jsonSchemaDialect).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    const ids = Object.values(doc.paths).flatMap((p: any) => Object.values(p).map((o: any) => o.operationId));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('is what the SDK generator renders offline (so sdk/ is generated from the served document)', () => {
    expect(renderOpenApiDocument()).toEqual(doc);
  });

  it('documents every route the server registers, and nothing it does not serve', () => {
    // The console's static files (/console/*) are not API: console/test/console.int.test.ts tests their headers.
    const served = registeredRoutes(api.app)
      .filter((r) => r.method !== 'HEAD' && !r.url.startsWith('/console'))
      .map((r) => `${r.method} ${openApiPath(r.url)}`)
      .sort();
    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops as object).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    expect(served.length).toBeGreaterThanOrEqual(14);
    expect(documented).toEqual(served);
  });

  it('documents the same request rules the handlers enforce', () => {
    const create = ajv.getSchema(`${DOC_ID}#/components/schemas/CreateKeyRequest`)!;
    expect(create(seedBody('user123'))).toBe(true);
    expect(create({ ...seedBody('user123'), colour: 'blue' })).toBe(false);
    expect(create(seedBody('user123', { rate_limit_per_minute: 1_000_001 }))).toBe(false);
    const listParams = doc.paths['/api/keys/{user_id}'].get.parameters.map((p: any) => `${p.in}:${p.name}`);
    expect(listParams).toEqual(['path:user_id', 'query:active', 'query:expiring_within_days', 'query:limit', 'query:cursor']);
    const idempotency = doc.paths['/api/keys'].post.parameters.find((p: any) => p.name === 'Idempotency-Key');
    expect(idempotency).toMatchObject({ in: 'header' });
    // The pattern the handler enforces, so a client generated from the document never sends a key it refuses.
    const pattern = new RegExp(idempotency.schema.pattern);
    expect(pattern.test('retry-1')).toBe(true);
    expect(pattern.test('with space')).toBe(false);
    expect(pattern.test('é')).toBe(false);
  });

  it('live answers validate against the documented schemas', async () => {
    const created = await api.call('POST', '/api/keys', { body: seedBody('openapi-user', { description: 'x', metadata: { a: [1] }, expires_in_days: 3 }) });
    expectDocumented('POST', '/api/keys', created);
    const id = created.body.id;
    const one = await api.call('GET', `/api/keys/by-id/${id}`);
    expectDocumented('GET', '/api/keys/by-id/{id}', one);
    // The documented record is closed: a leaked field (a hash, say) would fail validation.
    expect(ajv.getSchema(`${DOC_ID}#/components/schemas/Key`)!({ ...one.body, key_hash: 'x' })).toBe(false);
    expectDocumented('GET', '/api/keys/{user_id}', await api.call('GET', '/api/keys/openapi-user'));
    expectDocumented('GET', '/api/keys', await api.call('GET', '/api/keys?limit=1'));
    expectDocumented('PATCH', '/api/keys/{id}', await api.call('PATCH', `/api/keys/${id}`, { body: { rate_limit_per_day: null } }));
    expectDocumented('POST', '/api/keys/{id}/extend', await api.call('POST', `/api/keys/${id}/extend`, { body: { days: 2 } }));
    expectDocumented('POST', '/api/keys/{id}/rotate', await api.call('POST', `/api/keys/${id}/rotate`, { body: {} }));
    expectDocumented('POST', '/api/keys/{id}/revoke', await api.call('POST', `/api/keys/${id}/revoke`, { body: { reason: 'done' } }));
    expectDocumented('PATCH', '/api/keys/{id}', await api.call('PATCH', `/api/keys/${id}`, { body: { name: 'x' } })); // 409
    expectDocumented('GET', '/api/permission-sets', await api.call('GET', '/api/permission-sets'));
    expectDocumented('DELETE', '/api/keys/{id}', await api.call('DELETE', `/api/keys/${id}`));
    // Errors use the documented Error schema too.
    expectDocumented('DELETE', '/api/keys/{id}', await api.call('DELETE', `/api/keys/${id}`)); // 404
    expectDocumented('POST', '/api/keys', await api.call('POST', '/api/keys', { rawBody: '{' })); // 400
    expectDocumented('POST', '/api/keys', await api.call('POST', '/api/keys', { body: seedBody('u', { permission_set: 'nope' }) })); // 422
    expectDocumented('GET', '/api/keys', await api.call('GET', '/api/keys', { token: null })); // 401
  });
});
