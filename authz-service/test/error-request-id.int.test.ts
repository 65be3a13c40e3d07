import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestGateway, type TestGateway } from './api-helpers.js';
import { createKey, sleep, TEST_ADMIN_TOKEN } from './helpers.js';

// Every error body carries the request id a user can quote (docs/errors.md): the management
// API's own id (also its x-request-id header), and at the gateway Envoy's x-request-id, the id
// the access log records for the same request.
const infra = inject('infra');
let stack: TestGateway;

beforeAll(async () => {
  stack = await startTestGateway(infra, 'error_request_id');
});

afterAll(async () => {
  await stack?.stop();
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function api(method: string, path: string, init: { headers?: Record<string, string>; body?: string } = {}) {
  const res = await fetch(`${stack.apiUrl}${path}`, { method, headers: init.headers, body: init.body });
  return { status: res.status, header: res.headers.get('x-request-id'), body: (await res.json()) as Record<string, unknown> };
}

/** The JSON access-log entry Envoy wrote for a request id (the file is flushed within a second). */
async function accessLogEntry(requestId: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const lines = readFileSync(stack.envoy.accessLogPath!, 'utf8').split('\n').filter(Boolean);
    const entry = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.request_id === requestId);
    if (entry) return entry;
    if (Date.now() > deadline) throw new Error(`no access-log entry for ${requestId} in ${lines.length} lines`);
    await sleep(100);
  }
}

describe('management API errors carry the request id', () => {
  it('in the body as request_id, equal to the x-request-id header, a fresh UUID per call', async () => {
    const answers = [
      await api('GET', '/api/keys/by-id/key_nope'), // 401 missing_credential (route-level auth)
      await api('GET', '/api/no-such-route', { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } }), // 404 handler
      await api('POST', '/api/keys', { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: '{' }), // 400 invalid_json
      await api('POST', '/api/keys', { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: '{}' }), // 400 invalid_request
    ];
    expect(answers.map((a) => [a.status, a.body.error])).toEqual([
      [401, 'missing_credential'],
      [404, 'not_found'],
      [400, 'invalid_json'],
      [400, 'invalid_request'],
    ]);
    for (const a of answers) {
      expect(a.header).toMatch(UUID);
      expect(a.body.request_id).toBe(a.header);
    }
    expect(new Set(answers.map((a) => a.header)).size).toBe(answers.length);
  });

  it('keeps a well-formed UUID from a proxy; ignores any other client value', async () => {
    const proxied = randomUUID();
    const kept = await api('GET', '/api/keys/by-id/key_nope', { headers: { 'x-request-id': proxied } });
    expect(kept.header).toBe(proxied);
    expect(kept.body.request_id).toBe(proxied);

    for (const sent of ['attacker-chosen id', `${proxied}x`, 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz']) {
      const junk = await api('GET', '/api/keys/by-id/key_nope', { headers: { 'x-request-id': sent } });
      expect(junk.header).toMatch(UUID);
      expect(junk.header).not.toBe(proxied);
      expect(junk.body.request_id).toBe(junk.header);
    }
  });

  it('successes carry the x-request-id header too', async () => {
    const res = await fetch(`${stack.apiUrl}/api/permission-sets`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toMatch(UUID);
  });
});

describe('gateway denials carry Envoy’s request id', () => {
  it('the body’s request_id is the id Envoy logged for the request, never one the client sent', async () => {
    const clientId = randomUUID();
    const missing = await fetch(`${stack.envoy.url}/hello`, { headers: { 'x-request-id': clientId } });
    const { plaintext } = await createKey(stack.authz, { permissionSet: 'read_only' });
    const scoped = await fetch(`${stack.envoy.url}/echo`, { method: 'POST', headers: { authorization: `Bearer ${plaintext}` } });

    const denials = [
      { status: missing.status, body: (await missing.json()) as Record<string, unknown> },
      { status: scoped.status, body: (await scoped.json()) as Record<string, unknown> },
    ];
    expect(denials.map((d) => [d.status, d.body.error])).toEqual([
      [401, 'missing_credential'],
      [403, 'insufficient_scope'],
    ]);
    for (const d of denials) {
      expect(d.body.request_id).toMatch(UUID);
      expect(d.body.request_id).not.toBe(clientId);
      const entry = await accessLogEntry(d.body.request_id as string);
      expect(entry.status).toBe(d.status);
      expect(entry.path).toBe(d.status === 401 ? '/hello' : '/echo');
    }
    // The 403 knows the caller, so its log entry names the refusal's code too.
    expect((await accessLogEntry(denials[1]!.body.request_id as string)).error_code).toBe('insufficient_scope');
  });
});
