import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@tollgate/common';
import { ENVOY_CONFIG_PATH, freePort, renderEnvoyConfig, startLoopbackEnvoy, validateEnvoyConfig, type RunningEnvoy } from '@tollgate/devstack';
import { buildBackend } from '../src/server.js';

// Envoy in front of backend-hello, with ext_authz switched off (as the stack runs before
// authz-service is configured): routing, request ids and header hygiene.
const backend = buildBackend(createLogger({ service: 'backend-hello', level: 'silent' }));
let envoy: RunningEnvoy;

beforeAll(async () => {
  const backendPort = await freePort();
  await backend.listen({ host: '127.0.0.1', port: backendPort });
  envoy = await startLoopbackEnvoy({ backendPort, authzPort: null });
});

afterAll(async () => {
  await envoy?.process.stop();
  await backend.close();
});

describe('Envoy in front of backend-hello', () => {
  it('validates the canonical envoy/envoy.yaml with the real Envoy', () => {
    const r = validateEnvoyConfig(ENVOY_CONFIG_PATH);
    expect(r.output).toMatch(/OK/);
    expect(r.ok).toBe(true);
  });

  it('validates the loopback rendering with ext_authz and access logs on', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tollgate-envoy-')), 'envoy.yaml');
    writeFileSync(
      path,
      renderEnvoyConfig({
        listen: { host: '127.0.0.1', port: 18000 },
        adminPort: 19901,
        backend: { host: '127.0.0.1', port: 18081 },
        authz: { host: '127.0.0.1', port: 19191 },
        als: { host: '127.0.0.1', port: 19292 },
      }),
    );
    expect(validateEnvoyConfig(path).ok).toBe(true);
  });

  it('answers /health and /hello through Envoy', async () => {
    const health = await fetch(`${envoy.url}/health`);
    expect(health.status).toBe(200);
    const hello = await fetch(`${envoy.url}/hello`);
    expect(hello.status).toBe(200);
    expect((await hello.json()).message).toBe('Hello, anonymous!');
  });

  it('answers /ping itself with OK', async () => {
    const res = await fetch(`${envoy.url}/ping`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('OK');
  });

  it('generates x-request-id for every request and ignores one a client sends', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${envoy.url}/echo`, { headers: { 'x-request-id': 'client-chosen' } });
      const body = await res.json();
      expect(body.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      ids.add(body.headers['x-request-id']);
    }
    expect(ids.size).toBe(3);
  });

  it('drops identity headers a client sends itself', async () => {
    const res = await fetch(`${envoy.url}/echo`, {
      headers: {
        'x-user-id': 'admin',
        'x-api-key-id': 'key_spoofed',
        'x-api-key-scopes': '*',
        'x-service-project': 'p',
        'x-service-name': 's',
        'x-token-id': 't',
      },
    });
    const { headers } = await res.json();
    for (const h of ['x-user-id', 'x-api-key-id', 'x-api-key-scopes', 'x-service-project', 'x-service-name', 'x-token-id']) {
      expect(headers[h]).toBeUndefined();
    }
  });
});
