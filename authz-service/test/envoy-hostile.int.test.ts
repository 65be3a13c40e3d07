import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, TestStack, type RunningEnvoy } from '@tollgate/devstack';
import { createKey, stackAuthz, stackEnv, startEnvoyFront, type TestAuthz } from './helpers.js';

// Hostile HTTP at the public listener: oversized, malformed and injected headers, big bodies,
// path tricks. Raw sockets where fetch would refuse to send the request at all.
const infra = inject('infra');
let authz: TestAuthz;
let envoy: RunningEnvoy;
let key: string;
let readOnlyReports: string;
const stack = new TestStack();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

beforeAll(async () => {
  authz = await stackAuthz(stack, await stackEnv(stack, infra, 'hostile'));
  key = (await createKey(authz)).plaintext;
  readOnlyReports = (await createKey(authz, { permissionSet: null, scopes: ['read:/echo/reports/'] })).plaintext;
  envoy = (await startEnvoyFront(stack, authz.grpcPort)).envoy;
});

afterAll(() => stack.stop());

/** Sends raw bytes and returns the status line's code (0 when the connection just closed). */
function raw(request: Buffer | string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const sock = connect(envoy.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.setTimeout(5000, () => sock.destroy(new Error('timeout')));
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text });
    });
    // Write without half-closing: Envoy treats a client FIN as the end of the connection.
    sock.write(request);
  });
}

describe('hostile HTTP at Envoy', () => {
  it('refuses oversized request headers with 431', async () => {
    const res = await fetch(`${envoy.url}/hello`, { headers: { authorization: `Bearer ${key}`, 'x-big': 'a'.repeat(70 * 1024) } });
    expect(res.status).toBe(431);
    // Refused while reading the headers, before the request has an id.
    expect(await res.json()).toEqual({ error: 'headers_too_large', message: expect.stringContaining('60 KiB') });
  });

  it('refuses headers with underscores (they could alias identity headers upstream)', async () => {
    const r = await raw(`GET /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nX_User_Id: admin\r\nConnection: close\r\n\r\n`);
    expect(r.status).toBe(400);
    const body = JSON.parse(r.text.slice(r.text.indexOf('{')));
    expect(body).toMatchObject({ error: 'malformed_request', message: expect.stringContaining('underscore') });
  });

  it('a CR/LF smuggled into a header value never becomes a header upstream', async () => {
    const r = await raw(`GET /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nX-Test: a\rX-User-Id: admin\r\nConnection: close\r\n\r\n`);
    // Envoy either refuses the request or drops the bare CR, keeping it all one header value.
    expect([200, 400]).toContain(r.status);
    if (r.status === 200) {
      const echoed = JSON.parse(r.text.slice(r.text.indexOf('{')));
      expect(echoed.headers['x-user-id']).not.toBe('admin');
      expect(echoed.headers['x-user-id']).toMatch(/^user_/);
    }
  });

  it('non-UTF-8 bytes in the credential get a clean 401, not a 5xx', async () => {
    const r = await raw(
      Buffer.concat([
        Buffer.from('GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk_'),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
        Buffer.from('\r\nConnection: close\r\n\r\n'),
      ]),
    );
    expect(r.status).toBe(401);
    expect(r.text).toContain('"error"');
  });

  it('bodies over 10 MiB get 413; an unauthenticated big body is refused before it is buffered', async () => {
    const big = Buffer.alloc(11 * 1024 * 1024, 97);
    const res = await fetch(`${envoy.url}/echo`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: big });
    expect(res.status).toBe(413);
    // Envoy's own refusal, in the gateway's error shape (docs/errors.md, "Envoy's own answers").
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ error: 'payload_too_large', message: expect.stringContaining('10 MiB'), request_id: expect.stringMatching(UUID) });
    const anon = await fetch(`${envoy.url}/echo`, { method: 'POST', body: big });
    expect(anon.status).toBe(401);
    const ok = await fetch(`${envoy.url}/echo`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: 'small' });
    expect((await ok.json()).body).toBe('small');
  });

  it('path tricks cannot escape a path-limited scope', async () => {
    const auth = { authorization: `Bearer ${readOnlyReports}` };
    expect((await fetch(`${envoy.url}/echo/reports/q1`, { headers: auth })).status).toBe(200);
    const dotdot = await raw(`GET /echo/reports/../admin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${readOnlyReports}\r\nConnection: close\r\n\r\n`);
    expect(dotdot.status).toBe(403);
    const encoded = await raw(`GET /echo/reports%2F..%2Fadmin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${readOnlyReports}\r\nConnection: close\r\n\r\n`);
    expect(encoded.status).toBe(400);
    const doubled = await raw(`GET //echo//other HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${readOnlyReports}\r\nConnection: close\r\n\r\n`);
    expect(doubled.status).toBe(403);
  });
});

describe('Envoy’s own answers when a part behind it is down', () => {
  it('authz-service unreachable: 503 authorizer_unavailable with Retry-After, never the upstream', async () => {
    const deadAuthz = await stack.envoy({ backendPort: await freePort(), authzPort: await freePort() });
    const res = await fetch(`${deadAuthz.url}/hello`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toEqual({
      error: 'authorizer_unavailable',
      message: expect.stringContaining('authorizer'),
      request_id: expect.stringMatching(UUID),
    });
  });

  it('the upstream unreachable: 503 upstream_unavailable; the Check’s own refusals keep their bodies', async () => {
    const deadBackend = await stack.envoy({ backendPort: await freePort(), authzPort: authz.grpcPort });
    const res = await fetch(`${deadBackend.url}/hello`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      error: 'upstream_unavailable',
      message: expect.stringContaining('unavailable'),
      request_id: expect.stringMatching(UUID),
    });
    const refused = await fetch(`${deadBackend.url}/hello`);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: 'missing_credential', request_id: expect.stringMatching(UUID) });
  });
});
