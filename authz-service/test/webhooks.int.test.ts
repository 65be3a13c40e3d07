import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestApi, startTestGateway, type TestGateway } from './api-helpers.js';
import { metricValue, sleep, startTestAuthz, TEST_ADMIN_TOKEN } from './helpers.js';
import { deliverStripeEvent, stripeEvent } from './stripe-events.js';
import { startWebhookReceiver, type ReceivedDelivery } from './webhook-receiver.js';

// Outbound webhooks end to end: endpoints registered through the management API, events queued
// in the transaction of the change they announce, deliveries signed the Standard Webhooks way to
// a real HTTP receiver on loopback, retried with backoff, parked, replayed, and sent by another
// process after a restart. Time- and usage-driven events (expiry, quota thresholds) come from
// the announcer's scan, driven here by calling it.
const infra = inject('infra');
const STRIPE_SECRET = 'whsec_outbound_webhooks_test_secret';
const DAY = 86_400_000;
const CONFIG = {
  VAULT_MASTER_KEYS: `mk1:${randomBytes(32).toString('base64')}`,
  STRIPE_WEBHOOK_SECRET: STRIPE_SECRET,
  WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
  WEBHOOK_POLL_INTERVAL_MS: '50',
  WEBHOOK_RETRY_BASE_MS: '100',
  WEBHOOK_RETRY_MAX_MS: '300',
  WEBHOOK_MAX_ATTEMPTS: '3',
  // Driven by the tests (scan()), so a scan never races an assertion.
  WEBHOOK_SCAN_INTERVAL_MS: '0',
  PLANS: JSON.stringify([{ name: 'metered', monthly_quota: 5, stripe_price: 'price_hooks_metered' }]),
};
let gw: TestGateway;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  gw = await startTestGateway(infra, 'webhooks', CONFIG);
});

afterAll(async () => {
  await gw?.stop();
  await receiver?.close();
});

async function manage(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gw.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function endpoint(events: string[], url = receiver.url): Promise<{ id: string; secret: string }> {
  const r = await manage('POST', '/api/webhook-endpoints', { url, events });
  expect(r.status).toBe(201);
  return r.body;
}

/** Waits until the receiver has `n` requests matching `pick`; returns them. */
async function receivedFor(pick: (d: ReceivedDelivery) => boolean, n = 1, withinMs = 5000): Promise<ReceivedDelivery[]> {
  const start = Date.now();
  for (;;) {
    const got = receiver.received.filter(pick);
    if (got.length >= n) return got;
    if (Date.now() - start > withinMs) throw new Error(`receiver got ${got.length} of ${n} expected requests in ${withinMs} ms`);
    await sleep(25);
  }
}

const ofType =
  (type: string, extra: (data: any) => boolean = () => true) =>
  (d: ReceivedDelivery) => {
    const p = JSON.parse(d.body);
    return p.type === type && extra(p.data);
  };

const verified = (d: ReceivedDelivery, secret: string) => new Webhook(secret).verify(d.body, d.headers as Record<string, string>) as any;

async function deleteEndpoint(id: string) {
  expect((await manage('DELETE', `/api/webhook-endpoints/${id}`)).status).toBe(200);
}

describe('webhook endpoints', () => {
  it('registers an endpoint with a secret shown once; reads never show it', async () => {
    const created = await manage('POST', '/api/webhook-endpoints', { url: receiver.url, events: ['key.created'], description: 'ops' });
    expect(created).toMatchObject({ status: 201, body: { object: 'webhook_endpoint', url: receiver.url, events: ['key.created'], enabled: true } });
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    const one = await manage('GET', `/api/webhook-endpoints/${created.body.id}`);
    const list = await manage('GET', '/api/webhook-endpoints');
    for (const answer of [JSON.stringify(one.body), JSON.stringify(list.body)]) expect(answer).not.toContain(created.body.secret);
    expect(one.body).not.toHaveProperty('secret');
    const stored = await gw.authz.deps.pool.query(`select * from webhook_endpoints where id = $1`, [created.body.id]);
    expect(JSON.stringify(stored.rows)).not.toContain(created.body.secret.slice(6));
    await deleteEndpoint(created.body.id);
  });

  it('refuses unknown event types, bad URLs and empty changes, changing nothing', async () => {
    const before = (await manage('GET', '/api/webhook-endpoints')).body.data.length;
    for (const body of [
      { url: receiver.url, events: ['key.exploded'] },
      { url: receiver.url, events: [] },
      { url: receiver.url, events: ['key.created', 'key.created'] },
      { url: 'ftp://example.com/x', events: ['key.created'] },
      { url: 'https://user:pw@example.com/x', events: ['key.created'] },
      { url: 'not a url', events: ['key.created'] },
    ]) {
      const r = await manage('POST', '/api/webhook-endpoints', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(['invalid_request', 'webhook_target_refused']).toContain(r.body.error);
    }
    const e = await endpoint(['key.created']);
    expect((await manage('PATCH', `/api/webhook-endpoints/${e.id}`, {})).status).toBe(400);
    expect((await manage('GET', '/api/webhook-endpoints')).body.data.length).toBe(before + 1);
    await deleteEndpoint(e.id);
  });

  it('refuses loopback and private targets unless WEBHOOK_ALLOW_PRIVATE_TARGETS is on', async () => {
    const strict = await startTestApi(infra, 'webhooks_strict', { VAULT_MASTER_KEYS: CONFIG.VAULT_MASTER_KEYS });
    try {
      for (const url of [
        'http://127.0.0.1:9/x',
        'http://localhost/x',
        'http://[::1]/x',
        'http://10.0.0.5/x',
        'http://169.254.169.254/latest/meta-data',
        'http://[::ffff:127.0.0.1]/x',
      ]) {
        const r = await strict.call('POST', '/api/webhook-endpoints', { body: { url, events: ['key.created'] } });
        expect(r.status, url).toBe(400);
        expect(r.body).toMatchObject({ error: 'webhook_target_refused' });
      }
      expect((await strict.call('GET', '/api/webhook-endpoints')).body.data).toEqual([]);
      // A public name is accepted (nothing is sent to it: no event happens here).
      const pub = await strict.call('POST', '/api/webhook-endpoints', { body: { url: 'https://hooks.example.com/tollgate', events: ['key.created'] } });
      expect(pub.status).toBe(201);
    } finally {
      await strict.stop();
    }
  });
});

describe('deliveries', () => {
  it('key.created reaches the receiver signed with the endpoint secret, without the key', async () => {
    const e = await endpoint(['key.created', 'key.revoked', 'key.rotated']);
    const created = await manage('POST', '/api/keys', { user_id: 'hook-user', name: 'announced' });
    const [d] = await receivedFor(ofType('key.created', (data) => data.key_id === created.body.id));
    const payload = verified(d!, e.secret);
    expect(payload).toMatchObject({ type: 'key.created', data: { key_id: created.body.id, user_id: 'hook-user', name: 'announced', actor: 'admin' } });
    expect(d!.headers['webhook-id']).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(d!.body).not.toContain(created.body.key);

    const rotated = await manage('POST', `/api/keys/${created.body.id}/rotate`, {});
    expect(rotated.status).toBe(200);
    const [r] = await receivedFor(ofType('key.rotated', (data) => data.key_id === created.body.id));
    expect(verified(r!, e.secret).data).toMatchObject({ key_id: created.body.id, grace_seconds: expect.any(Number) });
    expect(r!.body).not.toContain(rotated.body.key);

    await manage('POST', `/api/keys/${created.body.id}/revoke`, { reason: 'leaked' });
    const [v] = await receivedFor(ofType('key.revoked', (data) => data.key_id === created.body.id));
    expect(verified(v!, e.secret).data).toMatchObject({ reason: 'leaked' });

    const log = await manage('GET', `/api/webhook-deliveries?endpoint_id=${e.id}`);
    expect(log.body.data.map((x: any) => [x.event_type, x.status, x.attempts])).toEqual([
      ['key.revoked', 'delivered', 1],
      ['key.rotated', 'delivered', 1],
      ['key.created', 'delivered', 1],
    ]);
    await deleteEndpoint(e.id);
  });

  it('a receiver that answers 500 twice gets the delivery on the third try, same id, valid signature', async () => {
    const e = await endpoint(['key.created']);
    receiver.answer([500, 500]);
    const created = await manage('POST', '/api/keys', { user_id: 'hook-retry', name: 'retried' });
    const tries = await receivedFor(
      ofType('key.created', (data) => data.key_id === created.body.id),
      3,
    );
    expect(tries.map((t) => t.status)).toEqual([500, 500, 200]);
    expect(new Set(tries.map((t) => t.headers['webhook-id'])).size).toBe(1);
    for (const t of tries) expect(verified(t, e.secret).data.key_id).toBe(created.body.id);
    // Backoff (base 100 ms, jittered in its upper half): at least 50 ms, then at least 100 ms.
    expect(tries[1]!.at - tries[0]!.at).toBeGreaterThanOrEqual(50);
    expect(tries[2]!.at - tries[1]!.at).toBeGreaterThanOrEqual(100);
    await sleep(100);
    const log = await manage('GET', `/api/webhook-deliveries?endpoint_id=${e.id}`);
    expect(log.body.data[0]).toMatchObject({ status: 'delivered', attempts: 3, last_status: 200, last_error: null });
    await deleteEndpoint(e.id);
  });

  it('parks a delivery after WEBHOOK_MAX_ATTEMPTS, counts the failures, and replays it on retry', async () => {
    const e = await endpoint(['key.created']);
    const failedBefore = await metricValue(gw.authz, 'tollgate_webhook_deliveries_failed_total', { endpoint: e.id });
    receiver.answer([], 503);
    const created = await manage('POST', '/api/keys', { user_id: 'hook-parked', name: 'parked' });
    await receivedFor(
      ofType('key.created', (data) => data.key_id === created.body.id),
      3,
    );
    let parked: any;
    for (let i = 0; i < 100 && parked?.status !== 'failed'; i++) {
      await sleep(25);
      parked = (await manage('GET', `/api/webhook-deliveries?endpoint_id=${e.id}&status=failed`)).body.data[0];
    }
    expect(parked).toMatchObject({ status: 'failed', attempts: 3, last_status: 503, last_error: expect.stringContaining('503') });
    expect((await metricValue(gw.authz, 'tollgate_webhook_deliveries_failed_total', { endpoint: e.id })) - failedBefore).toBe(3);

    receiver.answer([], 200);
    const retried = await manage('POST', `/api/webhook-deliveries/${parked.id}/retry`);
    expect(retried).toMatchObject({ status: 202, body: { id: parked.id, status: 'pending', attempts: 0 } });
    const all = await receivedFor(
      ofType('key.created', (data) => data.key_id === created.body.id),
      4,
    );
    expect(all[3]).toMatchObject({ status: 200 });
    expect(all[3]!.headers['webhook-id']).toBe(parked.id);
    await sleep(100);
    expect((await manage('GET', `/api/webhook-deliveries/${parked.id}`)).body).toMatchObject({ status: 'delivered', attempts: 1 });
    const audit = await manage('GET', '/api/audit-events?action=webhook_delivery.retried');
    expect(audit.body.data[0]).toMatchObject({ details: { delivery_id: parked.id } });
    await deleteEndpoint(e.id);
  });
});

describe('announced by the scan', () => {
  it('quota.threshold fires at 80, 90 and 100 % of a monthly quota, once each', async () => {
    const e = await endpoint(['quota.threshold']);
    const k = (await manage('POST', '/api/keys', { user_id: 'hook-quota', name: 'metered', monthly_quota: 10 })).body;
    const call = () => fetch(`${gw.envoy.url}/hello`, { headers: { authorization: `Bearer ${k.key}` } });
    const mine = ofType('quota.threshold', (data) => data.key_id === k.id);
    const first = await call();
    expect(first.status, await first.text()).toBe(200);
    for (let i = 0; i < 6; i++) expect((await call()).status).toBe(200);
    expect(await gw.authz.announcer.scan()).toBe(0);
    expect((await call()).status).toBe(200); // 8 of 10
    expect(await gw.authz.announcer.scan()).toBe(1);
    expect(await gw.authz.announcer.scan()).toBe(0);
    for (let i = 0; i < 2; i++) expect((await call()).status).toBe(200); // 10 of 10: 90 and 100 together
    expect((await call()).status).toBe(429);
    expect(await gw.authz.announcer.scan()).toBe(2);
    expect(await gw.authz.announcer.scan()).toBe(0);
    const got = await receivedFor(mine, 3);
    await sleep(200);
    expect(receiver.received.filter(mine)).toHaveLength(3);
    expect(got.map((d) => verified(d, e.secret).data.threshold_percent).sort()).toEqual([100, 80, 90]);
    expect(verified(got[0]!, e.secret).data).toMatchObject({ monthly_quota: 10, month: new Date().toISOString().slice(0, 7) });

    // A quota that comes from the key's plan counts the same.
    const p = (await manage('POST', '/api/keys', { user_id: 'hook-quota', name: 'on a plan', plan: 'metered' })).body;
    for (let i = 0; i < 4; i++) expect((await fetch(`${gw.envoy.url}/hello`, { headers: { authorization: `Bearer ${p.key}` } })).status).toBe(200);
    expect(await gw.authz.announcer.scan()).toBe(1);
    const [planned] = await receivedFor(ofType('quota.threshold', (data) => data.key_id === p.id));
    expect(verified(planned!, e.secret).data).toMatchObject({ threshold_percent: 80, monthly_quota: 5, used: 4 });
    await deleteEndpoint(e.id);
  });

  it('key.expiring and token.expiring fire 7 days and 1 day before, once each', async () => {
    const e = await endpoint(['key.expiring', 'token.expiring']);
    const k = (await manage('POST', '/api/keys', { user_id: 'hook-expiry', name: 'short-lived', expires_in_days: 3 })).body;
    // A token as the token API stores it (issuing one needs GATEWAY_JWT_SECRET; the scan reads only the row).
    const jti = `tok_hook_${Date.now()}`;
    await gw.authz.deps.pool.query(
      `insert into gateway_tokens (jti, project, service, routes, kid, expires_at) values ($1, 'billing', 'reports', '{/reports}', 'k1', now() + interval '3 days')`,
      [jti],
    );
    const now = Date.now();
    await gw.authz.announcer.scan();
    await gw.authz.announcer.scan();
    const key7 = await receivedFor(ofType('key.expiring', (d) => d.key_id === k.id));
    const tok7 = await receivedFor(ofType('token.expiring', (d) => d.token_id === jti));
    expect(verified(key7[0]!, e.secret).data).toMatchObject({ days_before: 7, expires_at: k.expires_at, user_id: 'hook-expiry' });
    expect(verified(tok7[0]!, e.secret).data).toMatchObject({ days_before: 7, project: 'billing', service: 'reports' });
    // Two and a half days on, a day is left: the 1-day notice, once.
    await gw.authz.announcer.scan(new Date(now + 2.5 * DAY));
    await gw.authz.announcer.scan(new Date(now + 2.6 * DAY));
    await receivedFor(ofType('key.expiring', (d) => d.key_id === k.id && d.days_before === 1));
    await receivedFor(ofType('token.expiring', (d) => d.token_id === jti && d.days_before === 1));
    await sleep(200);
    expect(receiver.received.filter(ofType('key.expiring', (d) => d.key_id === k.id)).map((d) => JSON.parse(d.body).data.days_before)).toEqual([7, 1]);
    expect(receiver.received.filter(ofType('token.expiring', (d) => d.token_id === jti))).toHaveLength(2);
    await deleteEndpoint(e.id);
  });

  it('a key first seen a day from expiry gets the 1-day notice only', async () => {
    const e = await endpoint(['key.expiring']);
    const k = (await manage('POST', '/api/keys', { user_id: 'hook-expiry-late', name: 'last-day', expires_at: new Date(Date.now() + 0.5 * DAY).toISOString() }))
      .body;
    await gw.authz.announcer.scan();
    await receivedFor(ofType('key.expiring', (d) => d.key_id === k.id));
    await sleep(200);
    expect(receiver.received.filter(ofType('key.expiring', (d) => d.key_id === k.id)).map((d) => JSON.parse(d.body).data.days_before)).toEqual([1]);
    await deleteEndpoint(e.id);
  });
});

describe('billing events', () => {
  it('billing.suspended, billing.resumed and invoice.payment_failed follow Stripe’s events', async () => {
    const e = await endpoint(['billing.suspended', 'billing.resumed', 'invoice.payment_failed']);
    const k = (await manage('POST', '/api/keys', { user_id: 'hook-billing', name: 'billed', stripe_customer_id: 'cus_hooks' })).body;
    const sub = (status: string) => ({ id: 'sub_hooks', object: 'subscription', customer: 'cus_hooks', status });
    const now = Math.floor(Date.now() / 1000);
    const send = async (evt: unknown) => expect((await deliverStripeEvent(gw.apiUrl, evt, { secret: STRIPE_SECRET })).body.outcome).toBe('applied');
    await send(stripeEvent('invoice.payment_failed', { id: 'in_hooks_1', object: 'invoice', customer: 'cus_hooks', status: 'open' }, now - 2));
    await send(stripeEvent('customer.subscription.updated', sub('unpaid'), now - 1));
    await send(stripeEvent('customer.subscription.updated', sub('active'), now));
    const cus = (d: any) => d.stripe_customer_id === 'cus_hooks';
    const [failed] = await receivedFor(ofType('invoice.payment_failed', cus));
    const [suspended] = await receivedFor(ofType('billing.suspended', cus));
    const [resumed] = await receivedFor(ofType('billing.resumed', cus));
    expect(verified(failed!, e.secret).data).toMatchObject({ stripe_object_id: 'in_hooks_1', key_ids: [] });
    expect(verified(suspended!, e.secret).data).toMatchObject({ status: 'unpaid', key_ids: [k.id] });
    expect(verified(resumed!, e.secret).data).toMatchObject({ status: 'active', key_ids: [k.id] });
    // Active again while active: nothing changed, nothing announced.
    await send(stripeEvent('invoice.paid', { id: 'in_hooks_2', object: 'invoice', customer: 'cus_hooks', status: 'paid' }, now + 1));
    await sleep(300);
    expect(receiver.received.filter(ofType('billing.resumed', cus))).toHaveLength(1);
    await deleteEndpoint(e.id);
  });
});

describe('secrets and endpoint changes', () => {
  it('after a rotation deliveries carry both signatures until the grace ends; the new secret shows once', async () => {
    const e = await endpoint(['key.created']);
    const rotated = await manage('POST', `/api/webhook-endpoints/${e.id}/rotate-secret`, { grace_seconds: 3600 });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(e.secret);
    expect(rotated.body.previous_secret_expires_at).toEqual(expect.any(String));
    const k = (await manage('POST', '/api/keys', { user_id: 'hook-rotate', name: 'r1' })).body;
    const [d] = await receivedFor(ofType('key.created', (data) => data.key_id === k.id));
    expect(String(d!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(verified(d!, e.secret).data.key_id).toBe(k.id);
    expect(verified(d!, rotated.body.secret).data.key_id).toBe(k.id);

    const now = await manage('POST', `/api/webhook-endpoints/${e.id}/rotate-secret`, { grace_seconds: 0 });
    const k2 = (await manage('POST', '/api/keys', { user_id: 'hook-rotate', name: 'r2' })).body;
    const [d2] = await receivedFor(ofType('key.created', (data) => data.key_id === k2.id));
    expect(String(d2!.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect(() => verified(d2!, rotated.body.secret)).toThrow();
    expect(verified(d2!, now.body.secret).data.key_id).toBe(k2.id);
    await deleteEndpoint(e.id);
  });

  it('a disabled endpoint, or one not subscribed to the event, gets nothing', async () => {
    const off = await endpoint(['key.created']);
    expect((await manage('PATCH', `/api/webhook-endpoints/${off.id}`, { enabled: false })).body).toMatchObject({ enabled: false });
    const other = await endpoint(['key.revoked']);
    const k = (await manage('POST', '/api/keys', { user_id: 'hook-quiet', name: 'unheard' })).body;
    await sleep(300);
    expect(receiver.received.filter(ofType('key.created', (data) => data.key_id === k.id))).toHaveLength(0);
    const queued = await gw.authz.deps.pool.query(`select count(*)::int as n from webhook_deliveries where endpoint_id = any($1)`, [[off.id, other.id]]);
    expect(queued.rows[0].n).toBe(0);
    await deleteEndpoint(off.id);
    await deleteEndpoint(other.id);
  });
});

describe('master key rotation', () => {
  it('vault rewrap moves signing secrets, a previous one in its grace too; a new-key-only process then signs with both', async () => {
    const e = await endpoint(['key.created']);
    const rotated = (await manage('POST', `/api/webhook-endpoints/${e.id}/rotate-secret`, { grace_seconds: 3600 })).body;
    const lapsed = await endpoint(['key.revoked']);
    await manage('POST', `/api/webhook-endpoints/${lapsed.id}/rotate-secret`, { grace_seconds: 3600 });
    // The second endpoint's grace is over: its previous secret never signs again.
    await gw.authz.deps.pool.query(`update webhook_endpoints set previous_secret_expires_at = now() - interval '1 second' where id = $1`, [lapsed.id]);

    const mk2 = `mk2:${randomBytes(32).toString('base64')}`;
    await gw.authz.webhooks.stop();
    const both = await startTestAuthz(gw.env, { ...CONFIG, VAULT_MASTER_KEYS: `${mk2},${CONFIG.VAULT_MASTER_KEYS}` });
    try {
      const call = (path: string) =>
        fetch(`http://127.0.0.1:${both.httpPort}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
      const answer = await (await call('/api/vault/rewrap')).json();
      // e: current and previous; lapsed: current only (its expired previous secret is dropped).
      expect(answer.by_table.webhook_secrets).toEqual({ rewrapped: 3, failed: 0 });
      expect(answer.master_key_id).toBe('mk2');
      expect((await (await call('/api/vault/rewrap')).json()).by_table.webhook_secrets).toEqual({ rewrapped: 0, failed: 0 });
      expect(both.lines.join('')).not.toContain(rotated.secret);
    } finally {
      await both.stop();
    }
    const rows = await gw.authz.deps.pool.query(
      `select id, master_key_id, previous_master_key_id, previous_wrapped_dek is null as dropped from webhook_endpoints where id = any($1) order by id`,
      [[e.id, lapsed.id]],
    );
    expect(rows.rows).toEqual(
      [
        { id: e.id, master_key_id: 'mk2', previous_master_key_id: 'mk2', dropped: false },
        { id: lapsed.id, master_key_id: 'mk2', previous_master_key_id: null, dropped: true },
      ].sort((a, b) => a.id.localeCompare(b.id)),
    );

    // The old master key can go: a process holding only mk2 signs with the new and the previous secret.
    const newOnly = await startTestAuthz(gw.env, { ...CONFIG, VAULT_MASTER_KEYS: mk2 });
    try {
      const k = (await manage('POST', '/api/keys', { user_id: 'hook-rewrap', name: 'after rewrap' })).body;
      const [d] = await receivedFor(ofType('key.created', (data) => data.key_id === k.id));
      expect(verified(d!, rotated.secret).data.key_id).toBe(k.id);
      expect(verified(d!, e.secret).data.key_id).toBe(k.id);
    } finally {
      await newOnly.stop();
    }
    await deleteEndpoint(e.id);
    await deleteEndpoint(lapsed.id);
  });
});

describe('restarts', () => {
  it('a delivery queued while no process sends survives the restart and is sent by the next one', async () => {
    const e = await endpoint(['key.created']);
    await gw.authz.webhooks.stop(); // as if the process died: nothing sends
    const created = await manage('POST', '/api/keys', { user_id: 'hook-restart', name: 'survivor' });
    await sleep(300);
    expect(receiver.received.filter(ofType('key.created', (data) => data.key_id === created.body.id))).toHaveLength(0);
    const next = await startTestAuthz(gw.env, CONFIG);
    try {
      const [d] = await receivedFor(ofType('key.created', (data) => data.key_id === created.body.id));
      expect(verified(d!, e.secret).data.key_id).toBe(created.body.id);
    } finally {
      await next.stop();
    }
    await deleteEndpoint(e.id);
  });
});
