import Stripe from 'stripe';
import { migrateBilling } from '@tollgate/usage-model';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestGateway, type TestGateway } from './api-helpers.js';
import { sleep } from './helpers.js';
import { deliverStripeEvent, stripeEvent } from './stripe-events.js';

// Stripe's subscription lifecycle through the real Envoy: signed webhook deliveries (signed as
// Stripe signs them) suspend and resume a customer's keys within a second; a bad signature, a
// replay or an out-of-order event changes nothing; an operator's disable outlives a resumption.
const infra = inject('infra');
const SECRET = 'whsec_billing_lifecycle_test_secret';
const OLD_SECRET = 'whsec_billing_lifecycle_rotated_out';
const stripe = new Stripe('sk_test_unused');
let stack: TestGateway;

beforeAll(async () => {
  stack = await startTestGateway(infra, 'billing_life', { STRIPE_WEBHOOK_SECRET: `${SECRET},${OLD_SECRET}` });
});

afterAll(async () => {
  await stack?.stop();
});

const manage = (method: string, path: string, body?: unknown) => stack.manage(method, path, body);

let invoices = 0;
const event = stripeEvent;
const deliver = (evt: unknown, opts: { secret?: string; signature?: string } = {}) => deliverStripeEvent(stack.apiUrl, evt, { secret: SECRET, ...opts });

const gateway = (key: string) => fetch(`${stack.envoy.url}/hello`, { headers: { authorization: `Bearer ${key}` } });

async function untilStatus(key: string, status: number, withinMs = 1000): Promise<number> {
  const start = Date.now();
  let last = 0;
  while (Date.now() - start < withinMs + 500) {
    last = (await gateway(key)).status;
    if (last === status) return Date.now() - start;
    await sleep(25);
  }
  throw new Error(`gateway still answers ${last}, not ${status}, after ${Date.now() - start} ms`);
}

async function customerKey(customer: string) {
  const k = await manage('POST', '/api/keys', { user_id: `billing-${customer}`, name: 'billed', stripe_customer_id: customer });
  expect((await gateway(k.key)).status).toBe(200); // cached now: the change must reach the cache
  return k as { id: string; key: string };
}

const sub = (customer: string, status: string, id = `sub_${customer}`) => ({ id, object: 'subscription', customer, status });
const invoice = (customer: string) => ({ id: `in_${customer}_${++invoices}`, object: 'invoice', customer, status: 'paid' });

describe('Stripe webhooks through Envoy', () => {
  it('cancel → 402 billing_suspended within a second → invoice.paid → 200 again', async () => {
    const k = await customerKey('cus_cancel');
    const r = await deliver(event('customer.subscription.deleted', sub('cus_cancel', 'canceled')));
    expect(r).toMatchObject({ status: 200, body: { outcome: 'applied' } });
    expect(await untilStatus(k.key, 402)).toBeLessThan(1000);
    const refused = await gateway(k.key);
    expect(await refused.json()).toMatchObject({ error: 'billing_suspended', request_id: expect.any(String) });
    expect(await manage('GET', `/api/keys/by-id/${k.id}`)).toMatchObject({ status: 'suspended', is_active: true });

    expect((await deliver(event('invoice.paid', invoice('cus_cancel')))).body.outcome).toBe('applied');
    expect(await untilStatus(k.key, 200)).toBeLessThan(1000);
    expect(await manage('GET', `/api/keys/by-id/${k.id}`)).toMatchObject({ status: 'active' });
  });

  it('a bad or stale signature answers 400 and changes nothing; a rotated-in secret verifies', async () => {
    const k = await customerKey('cus_badsig');
    const evt = event('customer.subscription.deleted', sub('cus_badsig', 'canceled'));
    const stale = stripe.webhooks.generateTestHeaderString({ payload: JSON.stringify(evt), secret: SECRET, timestamp: Math.floor(Date.now() / 1000) - 3600 });
    for (const attempt of [{ secret: 'whsec_not_the_secret' }, { signature: 't=1,v1=00' }, { signature: stale }]) {
      const r = await deliver(evt, attempt);
      expect(r).toMatchObject({ status: 400, body: { error: 'invalid_stripe_signature', request_id: expect.any(String) } });
    }
    await sleep(300);
    expect((await gateway(k.key)).status).toBe(200);
    // The same event, validly signed (with the second secret), still applies: refusals recorded nothing.
    expect((await deliver(evt, { secret: OLD_SECRET })).body.outcome).toBe('applied');
    expect(await untilStatus(k.key, 402)).toBeLessThan(1000);
  });

  it('a replayed or out-of-order event does nothing', async () => {
    const k = await customerKey('cus_order');
    const now = Math.floor(Date.now() / 1000);
    const cancel = event('customer.subscription.updated', sub('cus_order', 'unpaid'), now - 10);
    const resume = event('customer.subscription.updated', sub('cus_order', 'active'), now);
    expect((await deliver(resume)).body.outcome).toBe('applied');
    expect((await deliver(cancel)).body.outcome).toBe('stale');
    expect((await deliver(resume)).body.outcome).toBe('duplicate');
    await sleep(300);
    expect((await gateway(k.key)).status).toBe(200);
    const suspend = event('customer.subscription.updated', sub('cus_order', 'paused'), now + 1);
    expect((await deliver(suspend)).body.outcome).toBe('applied');
    expect(await untilStatus(k.key, 402)).toBeLessThan(1000);
    expect((await deliver(resume)).body.outcome).toBe('duplicate');
    await sleep(300);
    expect((await gateway(k.key)).status).toBe(402);
  });

  it('an operator-disabled key stays disabled after resumption', async () => {
    const k = await customerKey('cus_disabled');
    await deliver(event('customer.subscription.deleted', sub('cus_disabled', 'canceled')));
    expect(await untilStatus(k.key, 402)).toBeLessThan(1000);
    await manage('PATCH', `/api/keys/${k.id}`, { is_active: false });
    await deliver(event('invoice.paid', invoice('cus_disabled')));
    await sleep(300);
    expect((await gateway(k.key)).status).toBe(401);
    expect(await manage('GET', `/api/keys/by-id/${k.id}`)).toMatchObject({ status: 'inactive', is_active: false });
  });

  it('invoice.payment_failed is recorded but suspends nothing', async () => {
    const k = await customerKey('cus_failed');
    expect((await deliver(event('invoice.payment_failed', { ...invoice('cus_failed'), status: 'open' }))).body.outcome).toBe('applied');
    await sleep(300);
    expect((await gateway(k.key)).status).toBe(200);
    const rows = await stack.authz.deps.pool.query(`select type from billing_events where stripe_customer_id = 'cus_failed'`);
    expect(rows.rows).toEqual([{ type: 'invoice.payment_failed' }]);
  });
});

describe('Stripe meter alerts', () => {
  it('show in the billing status, newest first, naming the meter', async () => {
    const alert = {
      id: `evt_meter_${Date.now()}`,
      object: 'v2.core.event',
      type: 'v1.billing.meter.error_report_triggered',
      created: new Date().toISOString(),
      related_object: { id: 'mtr_test_api_requests', type: 'billing.meter', url: '/v1/billing/meters/mtr_test_api_requests' },
      data: { developer_message_summary: 'There is 1 invalid event: customer not found' },
    };
    const r = await deliver(alert);
    expect(r.body.outcome, JSON.stringify(r.body)).toBe('applied');
    // The status reads billing-sidecar's outbox too: create its tables as its start would.
    await migrateBilling(stack.authz.deps.pool);
    const status = await manage('GET', '/api/billing/status');
    expect(status.meter_errors[0]).toMatchObject({
      event_id: alert.id,
      type: 'v1.billing.meter.error_report_triggered',
      meter_id: 'mtr_test_api_requests',
      summary: 'There is 1 invalid event: customer not found',
    });
  });
});
