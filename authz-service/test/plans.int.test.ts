import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migrateBilling } from '@tollgate/usage-model';
import { startTestGateway, type TestGateway } from './api-helpers.js';
import { sleep, TEST_ADMIN_TOKEN } from './helpers.js';

// Plans (PLANS) through the real Envoy: a Stripe subscription event (signed as Stripe signs it)
// puts the customer's keys on the plan of its price, and a price change moves their limits
// within a second; a key's own limit beats its plan's; a plan's scopes bound the key's; only an
// operator names a plan.
const infra = inject('infra');
const SECRET = 'whsec_plans_test_secret';
const stripe = new Stripe('sk_test_unused');
const PLANS = [
  { name: 'starter', rate_limit_per_minute: 3, stripe_price: 'price_starter' },
  { name: 'pro', rate_limit_per_minute: 6, rate_limit_per_day: 1000, monthly_quota: 5000, stripe_lookup_key: 'pro_monthly' },
  { name: 'reader', scopes: ['read'], stripe_price: 'price_reader' },
];
let stack: TestGateway;

beforeAll(async () => {
  stack = await startTestGateway(infra, 'plans', { STRIPE_WEBHOOK_SECRET: SECRET, PLANS: JSON.stringify(PLANS) });
  // GET /api/keys/:id/usage reads billing-sidecar's tables too.
  await migrateBilling(stack.authz.deps.pool);
});

afterAll(async () => {
  await stack?.stop();
});

async function api(method: string, path: string, body?: unknown, token = TEST_ADMIN_TOKEN) {
  const res = await fetch(`${stack.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function manage(method: string, path: string, body?: unknown) {
  const r = await api(method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

let seq = 0;
function subscription(type: string, customer: string, price: { id: string; lookup_key?: string | null }, created = Math.floor(Date.now() / 1000) + seq + 1) {
  seq += 1;
  const object = {
    id: `sub_${customer}`,
    object: 'subscription',
    customer,
    status: 'active',
    items: { object: 'list', data: [{ id: `si_${customer}_${seq}`, object: 'subscription_item', price: { object: 'price', lookup_key: null, ...price } }] },
  };
  // `created` in seconds: each event must be newer than the last one applied to this subscription.
  return { id: `evt_plans_${Date.now()}_${seq}`, object: 'event', type, created, data: { object } };
}

async function deliver(evt: unknown): Promise<string> {
  const payload = JSON.stringify(evt);
  const res = await fetch(`${stack.apiUrl}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET }) },
    body: payload,
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { outcome: string }).outcome;
}

const gateway = (key: string, method = 'GET') => fetch(`${stack.envoy.url}/hello`, { method, headers: { authorization: `Bearer ${key}` } });

/** Polls through Envoy until an answer passes `done`; answers how long that took after the change. */
async function until(key: string, done: (res: Response) => boolean, what: string, withinMs = 1000): Promise<number> {
  const start = Date.now();
  let last = '';
  while (Date.now() - start < withinMs + 500) {
    const res = await gateway(key);
    if (done(res)) return Date.now() - start;
    last = `${res.status} ${res.headers.get('ratelimit-policy')}`;
    await sleep(20);
  }
  throw new Error(`gateway still answers ${last}, not ${what}, after ${Date.now() - start} ms`);
}

const policy = (res: Response) => res.headers.get('ratelimit-policy') ?? '';
const statuses = async (key: string, n: number) => {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await gateway(key)).status);
  return out;
};

/** The counting below must stay inside one minute window: the previous one would weigh in. */
async function awayFromMinuteBoundary(): Promise<void> {
  const second = new Date().getUTCSeconds();
  if (second > 40) await sleep((61 - second) * 1000);
}

async function customerKey(customer: string, extra: Record<string, unknown> = {}) {
  const k = await manage('POST', '/api/keys', { user_id: `plans-${customer}`, name: 'billed', stripe_customer_id: customer, ...extra });
  expect((await gateway(k.key)).status).toBe(200); // cached now: the plan change must reach the cache
  return k as { id: string; key: string };
}

describe('plans through Envoy', () => {
  it('a subscription’s price puts the keys on its plan; a new price moves the limits within a second', async () => {
    const first = await customerKey('cus_plans');
    const second = await customerKey('cus_plans');
    await awayFromMinuteBoundary();

    expect(await deliver(subscription('customer.subscription.created', 'cus_plans', { id: 'price_starter' }))).toBe('applied');
    expect(await until(first.key, (r) => policy(r).includes('"minute";q=3;'), 'plan starter’s 3 a minute')).toBeLessThan(1000);
    // One used by the poll: two more pass, then 429 like any rate limit.
    expect(await statuses(first.key, 4)).toEqual([200, 200, 429, 429]);
    expect(await manage('GET', `/api/keys/by-id/${second.id}`)).toMatchObject({
      plan: 'starter',
      rate_limit_per_minute: null,
      effective_limits: { rate_limit_per_minute: 3, rate_limit_per_day: null, monthly_quota: null },
    });
    const audit = await manage('GET', `/api/audit-events?key_id=${first.id}&action=key.plan_changed`);
    expect(audit.data).toMatchObject([{ actor: 'stripe', details: { from: null, to: 'starter', stripe_customer_id: 'cus_plans' } }]);

    // Matched by lookup key: the price id is not in PLANS.
    expect(await deliver(subscription('customer.subscription.updated', 'cus_plans', { id: 'price_new_pro', lookup_key: 'pro_monthly' }))).toBe('applied');
    expect(await until(first.key, (r) => r.status === 200, 'the pro plan’s room (3 used of 6)')).toBeLessThan(1000);
    const res = await gateway(first.key);
    expect(res.status).toBe(200);
    expect(policy(res)).toMatch(/^"minute";q=6;w=60, "day";q=1000;w=86400, "quota";q=5000;w=\d+$/);
    expect(await statuses(first.key, 2)).toEqual([200, 429]);
    expect(await manage('GET', `/api/keys/by-id/${second.id}`)).toMatchObject({
      plan: 'pro',
      effective_limits: { rate_limit_per_minute: 6, rate_limit_per_day: 1000, monthly_quota: 5000 },
    });
    // The quota is the plan's too; only requests made under it counted (the poll's, and two more).
    expect((await manage('GET', `/api/keys/${first.id}/usage`)).quota).toMatchObject({ monthly_quota: 5000, used: 3, remaining: 4997 });
  });

  it('a key’s own limit beats its plan’s; the plan fills in the rest', async () => {
    const k = await customerKey('cus_override');
    expect(await deliver(subscription('customer.subscription.created', 'cus_override', { id: 'price_other', lookup_key: 'pro_monthly' }))).toBe('applied');
    expect(await until(k.key, (r) => policy(r).includes('"minute";q=6;'), 'plan pro')).toBeLessThan(1000);
    const patched = await manage('PATCH', `/api/keys/${k.id}`, { rate_limit_per_minute: 100 });
    expect(patched).toMatchObject({ plan: 'pro', rate_limit_per_minute: 100, effective_limits: { rate_limit_per_minute: 100, rate_limit_per_day: 1000 } });
    expect(await until(k.key, (r) => policy(r).startsWith('"minute";q=100;w=60, "day";q=1000;'), 'the key’s own 100 a minute')).toBeLessThan(1000);
    // An update with a price no plan maps leaves the plan as it is.
    expect(await deliver(subscription('customer.subscription.updated', 'cus_override', { id: 'price_unmapped' }))).toBe('applied');
    expect((await manage('GET', `/api/keys/by-id/${k.id}`)).plan).toBe('pro');
    // Stripe does not deliver in order: an older event does not move the keys back.
    const older = subscription('customer.subscription.updated', 'cus_override', { id: 'price_starter' }, Math.floor(Date.now() / 1000) - 3600);
    expect(await deliver(older)).toBe('stale');
    expect((await manage('GET', `/api/keys/by-id/${k.id}`)).plan).toBe('pro');
  });

  it('a plan’s scopes bound the key’s: a full_access key on the reader plan reads, and cannot write', async () => {
    const k = await customerKey('cus_reader', { permission_set: 'full_access' });
    expect((await gateway(k.key, 'POST')).status).not.toBe(403);
    expect(await deliver(subscription('customer.subscription.created', 'cus_reader', { id: 'price_reader' }))).toBe('applied');
    const start = Date.now();
    while ((await gateway(k.key, 'POST')).status !== 403) {
      expect(Date.now() - start).toBeLessThan(1500);
      await sleep(20);
    }
    const refused = await gateway(k.key, 'POST');
    expect(await refused.json()).toMatchObject({ error: 'insufficient_scope' });
    expect((await gateway(k.key)).status).toBe(200);
    expect(await manage('GET', `/api/keys/by-id/${k.id}`)).toMatchObject({ plan: 'reader', effective_scopes: ['read'] });
  });
});

describe('plans in the management API', () => {
  it('an operator names a configured plan (400 for another); an owner key may not (403 field_not_allowed)', async () => {
    const owner = await manage('POST', '/api/keys', { user_id: 'plans-owner', name: 'manager', scopes: ['keys:manage', 'read'] });
    const target = await manage('POST', '/api/keys', { user_id: 'plans-owner', name: 'target', scopes: ['read'] });

    const unknown = await api('PATCH', `/api/keys/${target.id}`, { plan: 'platinum' });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toMatchObject({ error: 'invalid_request', details: [{ field: 'body.plan', code: 'unknown_plan' }] });
    expect(unknown.body.message).toContain('known: starter, pro, reader');

    const byOwner = await api('PATCH', `/api/keys/${target.id}`, { plan: 'pro' }, owner.key);
    expect(byOwner).toMatchObject({ status: 403, body: { error: 'field_not_allowed', field: 'plan' } });
    expect((await manage('GET', `/api/keys/by-id/${target.id}`)).plan).toBeNull();

    expect(await manage('PATCH', `/api/keys/${target.id}`, { plan: 'pro' })).toMatchObject({ plan: 'pro', effective_limits: { rate_limit_per_minute: 6 } });
    // Under a plan, an owner may lower a limit below the plan's, never set one above it.
    expect((await api('PATCH', `/api/keys/${target.id}`, { rate_limit_per_minute: 7 }, owner.key)).body).toMatchObject({
      error: 'field_not_allowed',
      field: 'rate_limit_per_minute',
    });
    expect((await api('PATCH', `/api/keys/${target.id}`, { rate_limit_per_minute: 4 }, owner.key)).status).toBe(200);
    expect(await manage('PATCH', `/api/keys/${target.id}`, { plan: null })).toMatchObject({ plan: null, effective_limits: { rate_limit_per_minute: 4 } });
  });

  it('GET /api/plans lists the configured plans, to an admin and to an owner key', async () => {
    const owner = await manage('POST', '/api/keys', { user_id: 'plans-reader', name: 'manager', scopes: ['keys:manage'] });
    const expected = {
      object: 'list',
      data: [
        {
          name: 'starter',
          rate_limit_per_minute: 3,
          rate_limit_per_day: null,
          monthly_quota: null,
          scopes: null,
          stripe_price: 'price_starter',
          stripe_lookup_key: null,
        },
        {
          name: 'pro',
          rate_limit_per_minute: 6,
          rate_limit_per_day: 1000,
          monthly_quota: 5000,
          scopes: null,
          stripe_price: null,
          stripe_lookup_key: 'pro_monthly',
        },
        {
          name: 'reader',
          rate_limit_per_minute: null,
          rate_limit_per_day: null,
          monthly_quota: null,
          scopes: ['read'],
          stripe_price: 'price_reader',
          stripe_lookup_key: null,
        },
      ],
    };
    expect(await manage('GET', '/api/plans')).toEqual(expected);
    expect(await api('GET', '/api/plans', undefined, owner.key)).toEqual({ status: 200, body: expected });
  });
});
