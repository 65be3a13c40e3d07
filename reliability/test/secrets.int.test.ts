import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@tollgate/common';
import { sleep, TestStack } from '@tollgate/devstack';
import { closeServiceDeps, createServiceDeps, generateKey, issueServiceToken, loadAuthzConfig } from '@tollgate/authz-service';
import type { Gateway, IssuedKey, KeyIssuer } from '../src/index.js';
import { startGatewayStack } from './gateway-stack.js';

// Every secret Tollgate handles — API keys, a service token, provider credentials stored in the
// vault and brought by the client, the admin token, the key-hash, JWT and vault master secrets —
// goes through a gateway of real processes with traffic, denials and failures; then every log
// line of every process, Envoy's access log, every /metrics page and every Postgres table is
// searched for them in plain text.
const JWT_SECRET = `k1:${randomBytes(32).toString('base64url')}`;
const VAULT_KEY = `mk1:${randomBytes(32).toString('base64')}`;
const TOKEN_ROUTES = JSON.stringify([{ prefix: '/captionacc/prefect/api/', project: 'captionacc', services: ['api'] }]);
const PROVIDER_ROUTES = JSON.stringify([{ prefix: '/echo/rooms/', default_provider: 'daily', required: true }]);

let gw: Gateway;
let issuer: KeyIssuer;
let deps: Awaited<ReturnType<typeof createServiceDeps>>;
const secrets: Record<string, string> = {};
const stack = new TestStack();

beforeAll(async () => {
  ({ gw, issuer } = await startGatewayStack(stack, 'tollgate-secrets-', {
    logLevel: 'debug',
    authzEnv: {
      GATEWAY_JWT_SECRET: JWT_SECRET,
      SERVICE_TOKEN_ROUTES: TOKEN_ROUTES,
      VAULT_MASTER_KEYS: VAULT_KEY,
      PROVIDER_ROUTES,
    },
  }));
  // The service's own stores, driven from here as the management API would drive them.
  deps = await stack.start(
    'authz-service stores',
    () => createServiceDeps(loadAuthzConfig(gw.authzEnv(0)), createLogger({ service: 'secrets-test', level: 'silent' })),
    closeServiceDeps,
  );
}, 180_000);

afterAll(() => stack.stop());

let calls = 0;
const accessLogLines = () => readFileSync(gw.accessLogPath, 'utf8').split('\n').filter(Boolean).length;
async function call(path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  calls++;
  const res = await fetch(`${gw.url}${path}`, { headers });
  return { status: res.status, body: await res.text() };
}

describe('secrets never appear in plain text', () => {
  it('not in any log line, access log, metric or Postgres table, after traffic, denials and failures', async () => {
    const alice = await issuer.issue({ userId: 'alice' });
    const limited = await issuer.issue({ userId: 'bob', perMinute: 2 });
    const revoked = await issuer.issue({ userId: 'carol' });
    const { token } = await issueServiceToken(deps, {
      project: 'captionacc',
      service: 'api',
      routes: ['/captionacc/prefect/api/'],
      expiresInDays: 1,
      createdBy: 'secrets-test',
    });
    const stored = `daily_stored_${randomBytes(12).toString('hex')}`;
    await deps.vault.set('alice', 'daily', stored);
    const byok = `daily_byok_${randomBytes(12).toString('hex')}`;
    const neverIssued = generateKey('sk').plaintext;
    Object.assign(secrets, {
      'alice key': alice.plaintext,
      'limited key': limited.plaintext,
      'revoked key': revoked.plaintext,
      'never-issued key': neverIssued,
      'service token': token,
      'service token signature': token.split('.')[2]!,
      'stored provider key': stored,
      'client provider key (BYOK)': byok,
      'admin token': gw.secrets.adminToken,
      KEY_HASH_SECRETS: gw.secrets.keyHashSecret,
      GATEWAY_JWT_SECRET: JWT_SECRET.slice(3),
      VAULT_MASTER_KEYS: VAULT_KEY.slice(4),
    });
    // A key's random part, should something log it without its prefix.
    for (const k of [alice, limited, revoked] as IssuedKey[]) secrets[`${k.userId} key body`] = k.plaintext.slice(3);

    const bearer = (k: string) => ({ authorization: `Bearer ${k}` });
    const seen: Record<string, number> = {};
    const expectStatus = async (label: string, want: number, path: string, headers: Record<string, string>) => {
      const r = await call(path, headers);
      seen[label] = r.status;
      expect(r.status, `${label}: ${r.body.slice(0, 200)}`).toBe(want);
      return r;
    };

    // Allowed: both credential headers, a query string, a stored provider key injected, BYOK, a service token.
    await expectStatus('bearer', 200, '/hello?x=1', bearer(alice.plaintext));
    await expectStatus('x-api-key', 200, '/hello', { 'x-api-key': alice.plaintext });
    const injected = await expectStatus('vault injection', 200, '/echo/rooms/r1', bearer(alice.plaintext));
    expect(JSON.parse(injected.body).headers['x-provider-auth']).toBe(`Bearer ${stored}`); // the upstream got it, so it really flowed
    await expectStatus('byok', 200, '/echo/rooms/r2', { ...bearer(alice.plaintext), 'x-provider-auth': byok, 'x-provider': 'daily' });
    await expectStatus('service token', 200, '/captionacc/prefect/api/health', bearer(token));
    // A client that puts its key in the URL: Envoy's access log must not keep it.
    await expectStatus('key in query', 401, `/hello?api_key=${alice.plaintext}`, {});
    // Denials of every kind.
    await expectStatus('never issued', 401, '/hello', bearer(neverIssued));
    await expectStatus('bad checksum', 401, '/hello', bearer(alice.plaintext.slice(0, -1) + (alice.plaintext.endsWith('a') ? 'b' : 'a')));
    await expectStatus('conflicting headers', 401, '/hello', { ...bearer(alice.plaintext), 'x-api-key': limited.plaintext });
    await expectStatus('basic scheme', 401, '/hello', { authorization: `Basic ${Buffer.from(`u:${alice.plaintext}`).toString('base64')}` });
    await expectStatus('admin token as key', 401, '/hello', bearer(gw.secrets.adminToken));
    await expectStatus('token off its route', 403, '/hello', bearer(token));
    const [h, p] = token.split('.');
    await expectStatus('forged token', 401, '/captionacc/prefect/api/health', bearer(`${h}.${p}.${Buffer.from('x'.repeat(32)).toString('base64url')}`));
    for (let i = 0; i < 2; i++) await expectStatus(`limited ${i}`, 200, '/hello', bearer(limited.plaintext));
    await expectStatus('over the limit', 429, '/hello', bearer(limited.plaintext));
    await deps.keyStore.revoke(revoked.id, 'secrets-test', 'leaked');
    await deps.keyEvents.keyChanged(revoked.id);
    await sleep(300);
    await expectStatus('revoked', 401, '/hello', bearer(revoked.plaintext));

    // Failures: Redis and the billing sidecar die and come back while keys keep arriving.
    await gw.kill9('redis');
    await expectStatus('redis down', 200, '/hello', bearer(alice.plaintext));
    await expectStatus('redis down, unknown key', 401, '/hello', bearer(neverIssued));
    await gw.restart('redis');
    await gw.kill9('billing');
    await expectStatus('billing down', 200, '/hello', bearer(alice.plaintext));
    await gw.restart('billing');
    await expectStatus('after restarts', 200, '/hello', bearer(alice.plaintext));

    // The management API is not reachable through the public listener: /api/keys there is the
    // upstream's path (backend-hello has none: 404), and with the admin token it is not even checked.
    await expectStatus('admin token at /api/keys', 401, '/api/keys', bearer(gw.secrets.adminToken));
    const viaEnvoy = await expectStatus('key at /api/keys', 404, '/api/keys/alice', bearer(alice.plaintext));
    expect(viaEnvoy.body).not.toContain('"keys"');
    const metricsViaEnvoy = await call('/metrics', bearer(alice.plaintext));
    expect(metricsViaEnvoy.body).not.toContain('tollgate_authz_');
    const clusters = await (await fetch(`${gw.envoyAdminUrl}/clusters`)).text();
    for (const i of [0, 1] as const) expect(clusters).not.toContain(`:${new URL(gw.authzHttpUrl(i)).port}:`);

    // Let usage and last-used writes land, and Envoy flush its file log (once a second, as
    // deployed), so what is searched holds everything this traffic produced.
    const deadline = Date.now() + 15_000;
    while (accessLogLines() < calls && Date.now() < deadline) await sleep(200);
    expect(accessLogLines(), 'access log lines (one per request through Envoy)').toBe(calls);
    await sleep(1_500);

    // Everything to search.
    const corpus: { where: string; text: string }[] = [];
    for (const { component, line } of gw.allLogLines()) corpus.push({ where: `${component} log`, text: line });
    corpus.push({ where: 'envoy access log', text: readFileSync(gw.accessLogPath, 'utf8') });
    const metricUrls = [
      `${gw.authzHttpUrl(0)}/metrics`,
      `${gw.authzHttpUrl(1)}/metrics`,
      `${gw.billingHttpUrl}/metrics`,
      `${gw.backendUrl}/metrics`,
      `${gw.envoyAdminUrl}/stats/prometheus`,
    ];
    for (const url of metricUrls) corpus.push({ where: url, text: await (await fetch(url)).text() });
    const db = new pg.Client({ connectionString: gw.databaseUrl });
    await db.connect();
    try {
      const tables = await db.query<{ schema: string; name: string }>(
        `select table_schema as schema, table_name as name from information_schema.tables
          where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')`,
      );
      expect(tables.rows.map((t) => t.name)).toEqual(expect.arrayContaining(['api_keys', 'usage_records', 'gateway_tokens']));
      for (const t of tables.rows) {
        const rows = await db.query<{ row: string }>(`select t::text as row from ${pg.escapeIdentifier(t.schema)}.${pg.escapeIdentifier(t.name)} t`);
        corpus.push({ where: `table ${t.schema}.${t.name}`, text: rows.rows.map((r) => r.row).join('\n') });
      }
    } finally {
      await db.end();
    }

    // The search reaches what the traffic left behind (else "nothing found" would prove nothing).
    const all = corpus.map((c) => c.text).join('\n');
    expect(all).toContain(alice.id); // usage rows, access log
    expect(corpus.find((c) => c.where === 'table public.provider_keys')?.text ?? corpus.find((c) => /provider/.test(c.where))?.text).toBeTruthy();
    // Both replicas logged the denials (one line each, at info).
    for (const replica of ['authz-a', 'authz-b']) expect(corpus.filter((c) => c.where === `${replica} log`).length).toBeGreaterThan(0);
    expect(corpus.filter((c) => c.where.startsWith('authz-') && /revoked/.test(c.text)).length).toBeGreaterThan(0);

    const found: string[] = [];
    for (const [name, secret] of Object.entries(secrets)) {
      for (const c of corpus)
        if (c.text.includes(secret))
          found.push(`${name} in ${c.where}: …${c.text.slice(Math.max(0, c.text.indexOf(secret) - 80), c.text.indexOf(secret) + 20)}…`);
    }
    console.log(
      `secrets: searched ${corpus.length} texts (${(all.length / 1024).toFixed(0)} KiB) for ${Object.keys(secrets).length} secrets; statuses ${JSON.stringify(seen)}`,
    );
    expect(found).toEqual([]);
  }, 150_000);
});
