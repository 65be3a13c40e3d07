import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { TestStack } from '@tollgate/devstack';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type EnvoyFront, stackAuthz, stackEnv, startEnvoyFront, TEST_ADMIN_TOKEN } from '../../authz-service/test/helpers.js';
import { loadBillingConfig, startBillingSidecar } from '../../billing-sidecar/src/index.js';
import { silentLogger } from '../../billing-sidecar/test/helpers.js';
import type { AuthzService } from '../../authz-service/src/app.js';

// The console in Debian's chromium (scripts/lib/bootstrap.sh ensure_chromium) against the real
// stack: authz-service serving console/dist, Envoy in front of backend-hello.
const infra = inject('infra');
const CONSOLE_DIR = fileURLToPath(new URL('..', import.meta.url));
const SHOTS = fileURLToPath(new URL('../../.stack/screenshots/', import.meta.url));
const axeSource = (createRequire(import.meta.url)('axe-core') as { source: string }).source;

const stack = new TestStack();
let authz: AuthzService & { lines: string[] };
let front: EnvoyFront;
let base: string;
let browser: Browser;
const consoleErrors: string[] = [];
let receiver: { url: string };
// What the test's webhook receiver got, and whether it answers 500 (to park a delivery).
const received: { headers: IncomingHttpHeaders; body: string }[] = [];
let receiverFails = false;
const adminHeaders = { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'content-type': 'application/json' };
const createKey = async (body: object) =>
  (await (await fetch(`${base}/api/keys`, { method: 'POST', headers: adminHeaders, body: JSON.stringify(body) })).json()) as { id: string; key: string };

beforeAll(async () => {
  execFileSync(process.execPath, [fileURLToPath(new URL('../../node_modules/vite/bin/vite.js', import.meta.url)), 'build', '--config', 'vite.config.ts'], {
    cwd: CONSOLE_DIR,
    // vitest sets NODE_ENV=test, which would make vite bundle Preact's development build.
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: 'inherit',
  });
  mkdirSync(SHOTS, { recursive: true });
  const env = await stackEnv(stack, infra, 'console');
  authz = await stackAuthz(stack, env, {
    CONSOLE_DIST_DIR: `${CONSOLE_DIR}dist`,
    PLANS: JSON.stringify([
      { name: 'starter', rate_limit_per_minute: 60, rate_limit_per_day: 5000, monthly_quota: 100_000, stripe_price: 'price_starter' },
      { name: 'pro', rate_limit_per_minute: 600, scopes: ['read', 'write'], stripe_price: 'price_pro' },
    ]),
    // Webhooks: the vault seals their secrets, and the test's receiver listens on loopback.
    VAULT_MASTER_KEYS: `mk1:${randomBytes(32).toString('base64')}`,
    WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
    WEBHOOK_POLL_INTERVAL_MS: '100',
    WEBHOOK_RETRY_BASE_MS: '100',
    WEBHOOK_RETRY_MAX_MS: '200',
    WEBHOOK_MAX_ATTEMPTS: '2',
    WEBHOOK_SCAN_INTERVAL_MS: '0',
  });
  // The billing sidecar records what Envoy logs, so the key's chart shows the walk's requests.
  const billing = await stack.start(
    'billing-sidecar',
    () =>
      startBillingSidecar(
        loadBillingConfig({ DATABASE_URL: env.databaseUrl, BILLING_GRPC_PORT: '0', BILLING_HTTP_PORT: '0', BILLING_FLUSH_INTERVAL_MS: '20' }),
        silentLogger,
      ),
    (sidecar) => sidecar.stop(),
  );
  front = await startEnvoyFront(stack, authz.grpcPort, { alsPort: billing.grpcPort });
  base = `http://127.0.0.1:${authz.httpPort}`;
  receiver = await stack.start(
    'webhook receiver',
    () =>
      new Promise<{ url: string; close: () => Promise<void> }>((resolve) => {
        const server = createServer((req, res) => {
          const chunks: Buffer[] = [];
          req.on('data', (c: Buffer) => chunks.push(c));
          req.on('end', () => {
            received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
            res.writeHead(receiverFails ? 500 : 204).end();
          });
        });
        server.listen(0, '127.0.0.1', () =>
          resolve({
            url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
            close: () => new Promise<void>((done) => server.close(() => done())),
          }),
        );
      }),
    (r) => r.close(),
  );
  browser = await chromium.launch({ executablePath: process.env['CHROMIUM_BIN'] ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await stack.stop();
});

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  // Chromium also logs every 4xx/5xx answer as "Failed to load resource"; the API's refusals (401
  // before sign-in, 404 for a route this server lacks) are answers the screens handle, not errors.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) consoleErrors.push(`${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
  return page;
}

async function signIn(page: Page, token: string) {
  await page.goto(`${base}/console/`);
  await page.getByLabel('Admin token or API key').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

async function shoot(page: Page, name: string) {
  await page.waitForLoadState('networkidle');
  await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
}

/** axe-core in the page (evaluated over CDP, so the page's CSP still holds): serious and critical findings. */
async function axeFindings(page: Page): Promise<string[]> {
  await page.evaluate(axeSource);
  const ids = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: () => Promise<{ violations: { id: string; impact: string | null }[] }> } }).axe;
    const result = await axe.run();
    return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact})`);
  });
  return ids;
}

async function storedSecrets(page: Page): Promise<{ local: number; session: number; idb: number; url: string }> {
  return page.evaluate(async () => ({
    local: localStorage.length,
    session: sessionStorage.length,
    idb: (await indexedDB.databases()).length,
    url: location.href,
  }));
}

const envoyHello = (key: string) => fetch(`${front.url}/hello`, { headers: { 'x-api-key': key } });

async function refusedWithinASecond(key: string): Promise<number> {
  const deadline = Date.now() + 1000;
  for (;;) {
    const res = await envoyHello(key);
    await res.arrayBuffer();
    if (res.status === 401 || Date.now() > deadline) return res.status;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('console static files', () => {
  it('serves index.html uncached with the strict headers, assets immutable, deep links to index.html', async () => {
    const index = await fetch(`${base}/console/`);
    const html = await index.text();
    expect(index.status).toBe(200);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(index.headers.get('content-security-policy')).toBe(
      "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    );
    expect(index.headers.get('x-content-type-options')).toBe('nosniff');
    expect(index.headers.get('referrer-policy')).toBe('no-referrer');
    expect(html).not.toMatch(/<script>(?!<)/);
    const asset = html.match(/src="(\/console\/assets\/[^"]+\.js)"/)![1]!;
    const js = await fetch(`${base}${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    const deep = await fetch(`${base}/console/keys/abc`);
    expect(deep.status).toBe(200);
    expect(await deep.text()).toBe(html);
    const climb = await fetch(`${base}/console/assets/..%2F..%2Fpackage.json`);
    expect(climb.status).toBe(404);
  });
});

describe('the console in chromium', () => {
  it('walks seed 003: sign in, create, use through Envoy, watch usage, rotate, revoke', async () => {
    const page = await newPage();
    await page.goto(`${base}/console/`);
    await shoot(page, '01-sign-in');
    expect(await axeFindings(page)).toEqual([]);
    await signIn(page, TEST_ADMIN_TOKEN);
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'tollgate_session')!;
    expect(session).toBeDefined();
    expect(session.httpOnly).toBe(true);
    expect(session.sameSite).toBe('Strict');
    // Traffic through Envoy first, so the overview's charts and lists have something to show.
    const seedKey = await createKey({ user_id: 'seed-user', name: 'seed key' });
    const tightKey = await createKey({ user_id: 'seed-user', name: 'tight key', rate_limit_per_minute: 2 });
    const statuses: number[] = [];
    for (const key of [seedKey.key, seedKey.key, seedKey.key, 'sk_not_a_key', tightKey.key, tightKey.key, tightKey.key, tightKey.key]) {
      const res = await envoyHello(key);
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    expect(statuses).toContain(401);
    expect(statuses).toContain(429);
    await expect
      .poll(
        async () => {
          const range = { from: new Date(Date.now() - 3_600_000).toISOString(), to: new Date(Date.now() + 60_000).toISOString(), bucket: 'hour' };
          const o = (await (await fetch(`${base}/api/overview?${new URLSearchParams(range)}`, { headers: adminHeaders })).json()) as {
            series: { points: { allowed: number; rate_limited: number; unauthenticated: number }[] };
          };
          const sum = (f: 'allowed' | 'rate_limited' | 'unauthenticated') => o.series.points.reduce((n, p) => n + p[f], 0);
          // The unknown key's 401 counts too, unattributed (docs/billing.md, "Refusals without a key").
          return sum('allowed') >= 3 && sum('rate_limited') >= 1 && sum('unauthenticated') >= 1;
        },
        { timeout: 20_000, interval: 500 },
      )
      .toBe(true);
    await page.reload();
    await page.getByRole('heading', { name: 'Top keys' }).waitFor();
    await shoot(page, '02-overview');
    await expect.poll(() => page.getByRole('listitem').filter({ hasText: 'invalid_api_key' }).count()).toBe(1);
    await expect.poll(() => page.getByRole('link', { name: 'tight key' }).count()).toBe(1);
    expect(await axeFindings(page)).toEqual([]);

    await page.goto(`${base}/console/#/keys/new`);
    await page.getByLabel('User ID').fill('walker');
    await page.getByLabel('Name', { exact: true }).fill('walk key');
    await page.getByLabel('Scopes').fill('read');
    await page.getByLabel('Plan').selectOption('starter');
    await page.getByRole('button', { name: 'Create key' }).click();
    const plaintext = (await page.getByTestId('plaintext').textContent())!;
    expect(plaintext).toMatch(/^sk_/);
    await shoot(page, '04-key-created');
    expect(await axeFindings(page)).toEqual([]);
    const first = await envoyHello(plaintext);
    expect(`${first.status} ${await first.text()}`).toMatch(/^200 /);

    await page.getByRole('link', { name: 'Go to the key' }).click();
    await page.getByRole('heading', { name: 'Key walk key' }).waitFor();
    expect(await page.content()).not.toContain(plaintext);
    expect(await page.getByLabel('Plan').inputValue()).toBe('starter');
    const stored = await storedSecrets(page);
    expect(stored).toMatchObject({ local: 0, session: 0, idb: 0 });
    expect(stored.url).not.toContain(plaintext);
    expect(stored.url).not.toContain(TEST_ADMIN_TOKEN);
    // Last used comes from the gateway's own usage flush (USAGE_FLUSH_INTERVAL_MS, 1 s).
    await expect
      .poll(
        async () => {
          await page.reload();
          await page.getByRole('heading', { name: 'Key walk key' }).waitFor();
          return page.locator('dd').nth(5).textContent();
        },
        { timeout: 15_000, interval: 1000 },
      )
      .not.toBe('—');
    // The request through Envoy, in the key's usage chart (access log → billing-sidecar → roll-ups).
    await expect
      .poll(
        async () => {
          await page.reload();
          await page.getByRole('heading', { name: 'Key walk key' }).waitFor();
          const cell = page.getByTestId('outcome-totals').locator('tbody td').first();
          return (await cell.count()) ? Number(await cell.textContent()) : 0;
        },
        { timeout: 20_000, interval: 1000 },
      )
      .toBeGreaterThanOrEqual(1);
    await shoot(page, '05-key-detail');
    expect(await axeFindings(page)).toEqual([]);

    await page.getByLabel('Old secret keeps working for').selectOption('0');
    await page.getByRole('button', { name: 'Rotate key' }).click();
    const rotated = (await page.getByTestId('plaintext').textContent())!;
    expect(rotated).not.toBe(plaintext);
    expect(await refusedWithinASecond(plaintext)).toBe(401);
    expect((await envoyHello(rotated)).status).toBe(200);

    await page.getByLabel('Reason').fill('walk-through done');
    await page.getByRole('button', { name: 'Revoke key' }).click();
    await page.getByText('Revoked', { exact: true }).first().waitFor();
    expect(await refusedWithinASecond(rotated)).toBe(401);
    // A revoked key's refusal is still this key's: its chart shows it as a 401. (The secret rotated
    // away with no grace is no longer the key's at all, so its 401 is unattributed.)
    await expect
      .poll(
        async () => {
          await page.reload();
          await page.getByRole('heading', { name: 'Key walk key' }).waitFor();
          const cell = page.getByTestId('outcome-totals').locator('tbody td').nth(1);
          return (await cell.count()) ? Number(await cell.textContent()) : 0;
        },
        { timeout: 20_000, interval: 1000 },
      )
      .toBeGreaterThanOrEqual(1);

    // Delete lands on the key list, not on the deleted key's 404.
    const keyId = decodeURIComponent(new URL(page.url()).hash.split('/').pop()!);
    page.once('dialog', (d) => void d.accept());
    const keyReads: number[] = [];
    page.on('response', (r) => {
      if (r.url().includes('/api/keys/by-id/')) keyReads.push(r.status());
    });
    await page.getByRole('button', { name: 'Delete key' }).click();
    await expect.poll(() => new URL(page.url()).hash).toBe('#/keys');
    await page.locator('#page-title').waitFor();
    await page.waitForLoadState('networkidle');
    expect(keyReads).toEqual([]);
    expect(await page.getByRole('alert').count()).toBe(0);
    expect((await fetch(`${base}/api/keys/by-id/${keyId}`, { headers: adminHeaders })).status).toBe(404);

    for (const [route, name] of [
      ['keys', '03-keys'],
      ['users', '06-users'],
      ['tokens', '07-service-tokens'],
      ['provider-keys/walker', '08-provider-keys'],
      ['audit', '09-audit-log'],
      ['billing', '10-billing'],
      ['plans', '19-plans'],
    ] as const) {
      await page.goto(`${base}/console/#/${route}`);
      await page.locator('#page-title').waitFor();
      if (route === 'plans') await page.getByRole('rowheader', { name: 'starter' }).waitFor();
      await shoot(page, name);
      expect(await axeFindings(page), route).toEqual([]);
    }
    expect(await storedSecrets(page)).toMatchObject({ local: 0, session: 0, idb: 0 });
  }, 120_000);

  it('an owner sees only their own keys and cannot open another user’s key', async () => {
    const mine = await createKey({ user_id: 'owner-a', name: 'owner a key', scopes: ['keys:manage'] });
    const theirs = await createKey({ user_id: 'owner-b', name: 'owner b key' });
    const page = await newPage();
    await signIn(page, mine.key);
    await page.goto(`${base}/console/#/keys`);
    await page.getByRole('link', { name: 'owner a key' }).waitFor();
    await shoot(page, '11-owner-keys');
    expect(await axeFindings(page)).toEqual([]);
    expect(await page.getByRole('link', { name: 'owner b key' }).count()).toBe(0);
    for (const operatorOnly of ['Billing', 'Webhooks', 'Webhook deliveries', 'Plans']) {
      expect(await page.getByRole('link', { name: operatorOnly }).count(), operatorOnly).toBe(0);
    }
    await page.goto(`${base}/console/#/webhooks`);
    await page.getByText('Not available with an owner key.').waitFor();
    // The API refuses it too, whatever the UI shows.
    const webhooks = await fetch(`${base}/api/webhook-endpoints`, { headers: { authorization: `Bearer ${mine.key}` } });
    expect(webhooks.status).toBe(403);
    await page.goto(`${base}/console/#/keys/${theirs.id}`);
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('heading', { name: 'Key owner b key' }).count()).toBe(0);
    await page.goto(`${base}/console/#/keys/new`);
    await page.locator('#page-title').waitFor();
    expect(await page.getByLabel('Stripe customer ID').isDisabled()).toBe(true);
    expect(await page.getByLabel('Plan').isDisabled()).toBe(true);
    await shoot(page, '12-owner-create-key');
    expect(await axeFindings(page)).toEqual([]);
    await page.getByLabel('Name', { exact: true }).fill('owner a second key');
    await page.getByRole('button', { name: 'Create key' }).click();
    expect(await page.getByTestId('plaintext').textContent()).toMatch(/^sk_/);
    await shoot(page, '13-owner-key-created');
    expect(await axeFindings(page)).toEqual([]);
  }, 60_000);

  it('an operator adds a webhook endpoint, sees its secret once, watches and retries deliveries', async () => {
    const page = await newPage();
    page.on('dialog', (d) => void d.accept());
    await signIn(page, TEST_ADMIN_TOKEN);
    await page.goto(`${base}/console/#/webhooks/new`);
    // The API's refusal, in its own words.
    await page.getByLabel('URL').fill('ftp://127.0.0.1/hooks');
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    await expect.poll(async () => (await page.getByRole('alert').textContent()) ?? '').toMatch(/\(400 /);
    await page.getByLabel('URL').fill(receiver.url);
    await page.getByLabel('Description').fill('audit mirror');
    await page.getByRole('checkbox', { name: /key\.revoked/ }).check();
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    const secret = (await page.getByTestId('plaintext').textContent())!;
    expect(secret).toMatch(/^whsec_/);
    await shoot(page, '14-webhook-created');
    expect(await axeFindings(page)).toEqual([]);

    await page.getByRole('link', { name: 'Go to the endpoint' }).click();
    await page.getByRole('heading', { name: `Endpoint ${receiver.url}` }).waitFor();
    expect(await page.content()).not.toContain(secret);
    expect(await storedSecrets(page)).toMatchObject({ local: 0, session: 0, idb: 0 });
    const deliveries = page.getByTestId('deliveries');
    const deliveryRows = async () => {
      await page.getByRole('button', { name: 'Refresh' }).click();
      await page.waitForLoadState('networkidle');
      return (await deliveries.locator('tbody tr').allTextContents()).join('\n');
    };

    const delivered = await createKey({ user_id: 'hooked', name: 'hooked key' });
    await expect.poll(deliveryRows, { timeout: 15_000, interval: 300 }).toMatch(/key\.created.*delivered/);
    const first = received.find((r) => r.body.includes(delivered.id))!;
    expect(first.headers['webhook-signature']).toMatch(/^v1,/);
    expect(first.body).not.toContain(delivered.key);

    receiverFails = true;
    const parked = await createKey({ user_id: 'hooked', name: 'parked key' });
    await expect.poll(deliveryRows, { timeout: 15_000, interval: 300 }).toMatch(/parked/);
    expect(await deliveryRows()).toMatch(/HTTP 500|500/);
    await shoot(page, '16-webhook-endpoint');
    expect(await axeFindings(page)).toEqual([]);

    await page.goto(`${base}/console/#/webhooks`);
    const row = page.getByRole('row', { name: new RegExp(receiver.url.replace(/[./]/g, '\\$&')) });
    await row.waitFor();
    await page.waitForLoadState('networkidle');
    expect(await row.locator('td').nth(1).textContent()).toBe('key.created, key.revoked');
    expect(await row.locator('td').nth(3).textContent()).toBe('1');
    await shoot(page, '15-webhooks');
    expect(await axeFindings(page)).toEqual([]);

    receiverFails = false;
    await page.goto(`${base}/console/#/deliveries`);
    await page.getByRole('button', { name: 'Retry' }).waitFor();
    await shoot(page, '17-webhook-deliveries');
    expect(await axeFindings(page)).toEqual([]);
    const before = received.filter((r) => r.body.includes(parked.id)).length;
    await page.getByRole('button', { name: 'Retry' }).click();
    await page.getByText('queued again').waitFor();
    await expect.poll(() => received.filter((r) => r.body.includes(parked.id)).length, { timeout: 15_000 }).toBeGreaterThan(before);
    await expect.poll(deliveryRows, { timeout: 15_000, interval: 300 }).not.toMatch(/parked|pending/);

    await page.goto(`${base}/console/#/webhooks`);
    await page.getByRole('link', { name: receiver.url }).click();
    await page.getByLabel('Old secret keeps signing for').selectOption('0');
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    const rotated = (await page.getByTestId('plaintext').textContent())!;
    expect(rotated).toMatch(/^whsec_/);
    expect(rotated).not.toBe(secret);
    await page.getByRole('button', { name: 'Disable endpoint' }).click();
    await page.getByRole('button', { name: 'Enable endpoint' }).waitFor();
    await shoot(page, '18-webhook-rotated');
    await page.reload();
    await page.getByRole('heading', { name: `Endpoint ${receiver.url}` }).waitFor();
    expect(await page.content()).not.toContain(rotated);
    await page.getByRole('button', { name: 'Delete endpoint' }).click();
    await page.getByText('No webhook endpoints yet.').waitFor();
  }, 120_000);

  it('logged no console error on any screen', () => {
    expect(consoleErrors).toEqual([]);
  });
});
