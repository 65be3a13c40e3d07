import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, TestStack } from '@tollgate/devstack';
import type { AccessLogServiceClient } from '@tollgate/proto';
import type { BillingSidecar } from '../src/app.js';
import { createStripeMeterClient } from '../src/stripe/meter-client.js';
import { readBillingStatus } from '@tollgate/usage-model';
import { requeueParkedMeterEvents } from '../src/stores/stripe-outbox.js';
import { alsEntry, sendStream, startSidecarStack, waitUntil } from './helpers.js';

const infra = inject('infra');

describe('meter events against stripe-mock (Stripe API definition)', () => {
  it('sends a meter event Stripe accepts', async () => {
    const client = createStripeMeterClient({ apiKey: 'sk_test_tollgate', apiBase: infra.stripeMockUrl, timeoutMs: 5_000 });
    const outcome = await client.send({
      identifier: 'tg_0123456789abcdef',
      eventName: 'api_requests',
      stripeCustomerId: 'cus_mock',
      value: 12,
      timestamp: Math.floor(Date.now() / 1000) - 60,
    });
    expect(outcome).toEqual({ kind: 'accepted' });
  });

  it('aggregates usage into meter events that stripe-mock accepts, end to end', async () => {
    const stack = new TestStack();
    try {
      const { sidecar, client } = await startSidecarStack(stack, infra, 'billing_stripe_mock', {
        STRIPE_API_KEY: 'sk_test_tollgate',
        STRIPE_API_BASE: infra.stripeMockUrl,
        STRIPE_AGGREGATION_INTERVAL_SECONDS: '1',
        STRIPE_DRAIN_INTERVAL_MS: '100',
      });
      const identity = { user_id: 'u_mock', key_id: 'k_mock', stripe_customer_id: 'cus_mock' };
      await sendStream(client, [Array.from({ length: 9 }, () => alsEntry({ identity }))]);
      const sent = await waitUntil('meter event sent', async () => {
        const r = await sidecar.pool.query<{ value: string; status: string }>(`select value, status from stripe_outbox`);
        return r.rows.length > 0 && r.rows.every((x) => x.status === 'sent') ? r.rows : undefined;
      });
      expect(sent.reduce((a, r) => a + Number(r.value), 0)).toBe(9);
    } finally {
      await stack.stop();
    }
  });
});

/**
 * Behaves as Stripe documents where stripe-mock cannot: identifiers are unique (a repeat is a
 * 400 "already exists"), 429 carries Retry-After, 5xx and hung requests happen. It counts what
 * it accepted, per identifier, so a double bill would show.
 */
class StripeDouble {
  accepted = new Map<string, { customer: string; eventName: string; value: number; count: number }>();
  calls: { identifier: string; answer: number | 'hang'; at: number }[] = [];
  /** Scripted answers for the next calls (then normal service). */
  script: (number | 'hang')[] = [];
  outage = false;
  server: Server;
  url = '';

  constructor() {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async start(): Promise<void> {
    const port = await freePort();
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${port}`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body = '';
    for await (const chunk of req) body += chunk;
    const form = new URLSearchParams(body);
    const identifier = form.get('identifier') ?? '';
    const customer = form.get('payload[stripe_customer_id]') ?? '';
    const value = Number(form.get('payload[value]'));
    const json = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(payload));
    };
    const answer = this.outage ? 500 : (this.script.shift() ?? 200);
    this.calls.push({ identifier, answer, at: Date.now() });
    if (req.method !== 'POST' || req.url !== '/v1/billing/meter_events')
      return json(404, { error: { type: 'invalid_request_error', message: 'Unrecognized request URL' } });
    if (answer === 500) return json(500, { error: { type: 'api_error', message: 'An unknown error occurred' } });
    if (answer === 429) return json(429, { error: { type: 'invalid_request_error', message: 'Too many requests' } }, { 'retry-after': '1' });
    if (customer === 'cus_missing') return json(400, { error: { type: 'invalid_request_error', message: `No such customer: '${customer}'` } });
    const seen = this.accepted.get(identifier);
    if (seen) return json(400, { error: { type: 'invalid_request_error', message: `An event already exists with identifier ${identifier}.` } });
    this.accepted.set(identifier, { customer, eventName: form.get('event_name') ?? '', value, count: 1 });
    // 'hang': the event is recorded, but the answer arrives after the client gave up.
    if (answer === 'hang') await new Promise((r) => setTimeout(r, 1_500));
    json(200, {
      object: 'billing.meter_event',
      identifier,
      event_name: form.get('event_name'),
      payload: { stripe_customer_id: customer, value: String(value) },
      created: 0,
      livemode: false,
      timestamp: Number(form.get('timestamp')),
    });
  }

  /** What was accepted per meter event name, for one customer. */
  byEventFor(customer: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const a of this.accepted.values()) if (a.customer === customer) out[a.eventName] = (out[a.eventName] ?? 0) + a.value;
    return out;
  }

  totalFor(customer: string): number {
    let n = 0;
    for (const a of this.accepted.values()) if (a.customer === customer) n += a.value;
    return n;
  }
}

/** billing-sidecar over a database of its own, metering into a StripeDouble with fast retries. */
function sidecarWithStripeDouble(label: string, extra: Record<string, string> = {}) {
  const stripe = new StripeDouble();
  const stack = new TestStack();
  const held = {} as { sidecar: BillingSidecar; client: AccessLogServiceClient; stripe: StripeDouble };
  held.stripe = stripe;
  beforeAll(async () => {
    await stack.start(
      'Stripe double',
      () => stripe.start(),
      () => stripe.stop(),
    );
    ({ sidecar: held.sidecar, client: held.client } = await startSidecarStack(stack, infra, label, {
      STRIPE_API_KEY: 'sk_test_tollgate',
      STRIPE_API_BASE: stripe.url,
      STRIPE_AGGREGATION_INTERVAL_SECONDS: '1',
      STRIPE_DRAIN_INTERVAL_MS: '50',
      STRIPE_RETRY_BASE_MS: '50',
      STRIPE_RETRY_MAX_MS: '400',
      STRIPE_TIMEOUT_MS: '500',
      STRIPE_MAX_CALLS_PER_SECOND: '200',
      ...extra,
    }));
  });
  afterAll(() => stack.stop());
  return held;
}

describe('Stripe outages, rate limits, timeouts and refusals', () => {
  const held = sidecarWithStripeDouble('billing_stripe_double');

  it('bills exactly the billable usage after an outage, a 429, a timeout and replays', async () => {
    const { sidecar, client, stripe } = held;
    stripe.outage = true;
    const identity = { user_id: 'u_bill', key_id: 'k_bill', stripe_customer_id: 'cus_bill' };
    const entries = [
      ...Array.from({ length: 40 }, () => alsEntry({ identity })),
      ...Array.from({ length: 5 }, () => alsEntry({ identity, status: 502 })),
      ...Array.from({ length: 3 }, () => alsEntry({ identity, status: 429 })),
    ];
    // Usage arrives over several aggregation windows, with replays, while Stripe is down.
    for (let i = 0; i < 3; i++) {
      await sendStream(client, [entries.slice(i * 16, (i + 1) * 16), entries.slice(0, 10)]);
      await new Promise((r) => setTimeout(r, 1_100));
    }
    await waitUntil('failed calls during the outage', async () => stripe.calls.length >= 3);
    const during = await readBillingStatus(sidecar.pool);
    expect(during.pending_events).toBeGreaterThan(0);
    expect(stripe.accepted.size).toBe(0);
    const metrics = await sidecar.registry.metrics();
    expect(metrics).toMatch(/tollgate_billing_stripe_calls_total\{outcome="server_error"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/tollgate_billing_outbox_depth\{status="pending"[^}]*\} [1-9]/);

    // Stripe comes back: first a rate limit, then a call whose answer is lost to a timeout.
    stripe.script = [429, 'hang'];
    stripe.outage = false;
    await waitUntil('outbox drained', async () => ((await readBillingStatus(sidecar.pool)).pending_events === 0 ? true : undefined), 30_000);

    expect(stripe.totalFor('cus_bill')).toBe(40);
    for (const a of stripe.accepted.values()) expect(a.count).toBe(1);
    // The timed-out call was retried with the same identifier and Stripe's duplicate answer closed it.
    const sent = await sidecar.pool.query<{ identifier: string }>(`select identifier from stripe_outbox where status = 'sent'`);
    expect(new Set(sent.rows.map((r) => r.identifier))).toEqual(new Set(stripe.accepted.keys()));
    const after = await sidecar.registry.metrics();
    expect(after).toMatch(/tollgate_billing_stripe_calls_total\{outcome="rate_limited"[^}]*\} [1-9]/);
    expect(after).toMatch(/tollgate_billing_stripe_calls_total\{outcome="network_error"[^}]*\} [1-9]/);
    expect(after).toMatch(/tollgate_billing_stripe_calls_total\{outcome="duplicate"[^}]*\} [1-9]/);
    // The event refused with 429 was not tried again before Retry-After (1 s) had passed.
    const limited = stripe.calls.filter((c) => c.answer === 429);
    expect(limited).toHaveLength(1);
    const retry = stripe.calls.find((c) => c.identifier === limited[0]!.identifier && c.at > limited[0]!.at);
    expect(retry!.at - limited[0]!.at).toBeGreaterThanOrEqual(950);

    // Replaying all the entries now bills nothing more.
    await sendStream(client, [entries]);
    await sidecar.writer.flush();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(stripe.totalFor('cus_bill')).toBe(40);
  });

  it('parks a meter event Stripe refuses with a 4xx, keeping its message, and can requeue it', async () => {
    const { sidecar, client, stripe } = held;
    await sendStream(client, [[alsEntry({ identity: { user_id: 'u_gone', key_id: 'k_gone', stripe_customer_id: 'cus_missing' } })]]);
    const status = await waitUntil('parked event', async () => {
      const s = await readBillingStatus(sidecar.pool, { stripeCustomerId: 'cus_missing' });
      return s.parked_events.length > 0 ? s : undefined;
    });
    expect(status.parked_events[0]).toMatchObject({ stripe_customer_id: 'cus_missing', value: 1, status: 400 });
    expect(status.parked_events[0]!.error).toMatch(/No such customer/);
    const callsBefore = stripe.calls.filter((c) => c.identifier === status.parked_events[0]!.identifier).length;
    await new Promise((r) => setTimeout(r, 300));
    expect(stripe.calls.filter((c) => c.identifier === status.parked_events[0]!.identifier).length).toBe(callsBefore);
    expect(await requeueParkedMeterEvents(sidecar.pool, [status.parked_events[0]!.identifier])).toBe(1);
  });
});

describe('managed usage on meters of its own (STRIPE_MANAGED_METER_EVENTS, STRIPE_BILLED_USAGE=managed)', () => {
  const held = sidecarWithStripeDouble('billing_stripe_managed', {
    STRIPE_MANAGED_METER_EVENTS: '{"openai":"managed_openai"}',
    STRIPE_BILLED_USAGE: 'managed',
  });

  it('bills only operator-sourced cost units, per provider, exactly once through an outage and replays', async () => {
    const { sidecar, client, stripe } = held;
    stripe.outage = true;
    const base = { user_id: 'u_mgd', key_id: 'k_mgd', stripe_customer_id: 'cus_mgd' };
    const operator = (provider: string, cost?: string) => ({
      ...base,
      provider,
      credential_source: 'operator',
      operator_credential_id: `opc_${provider}`,
      ...(cost && { cost }),
    });
    const entries = [
      ...Array.from({ length: 6 }, () => alsEntry({ identity: operator('openai', '3') })),
      // A provider without a meter of its own: its managed usage goes to STRIPE_METER_EVENT_NAME.
      ...Array.from({ length: 2 }, () => alsEntry({ identity: operator('daily') })),
      // Not billable, whoever's credential it was.
      alsEntry({ identity: operator('openai', '3'), status: 502 }),
      // The user's own credential and no provider at all: not sent to Stripe in this mode.
      ...Array.from({ length: 5 }, () => alsEntry({ identity: { ...base, provider: 'openai', credential_source: 'user', cost: '3' } })),
      ...Array.from({ length: 4 }, () => alsEntry({ identity: base })),
    ];
    for (let i = 0; i < 2; i++) {
      await sendStream(client, [entries.slice(i * 9, (i + 1) * 9), entries.slice(0, 4)]);
      await new Promise((r) => setTimeout(r, 1_100));
    }
    await waitUntil('failed calls during the outage', async () => stripe.calls.length >= 2);
    stripe.script = ['hang'];
    stripe.outage = false;
    await waitUntil('outbox drained', async () => ((await readBillingStatus(sidecar.pool)).pending_events === 0 ? true : undefined), 30_000);
    expect(stripe.byEventFor('cus_mgd')).toEqual({ managed_openai: 18, api_requests: 2 });
    for (const a of stripe.accepted.values()) expect(a.count).toBe(1);

    // Every request is still recorded, with its cost, whatever reaches Stripe.
    const rows = await sidecar.pool.query<{ source: string | null; n: number; cost: number }>(
      `select credential_source as source, count(*)::int as n, sum(cost)::int as cost from usage_records where key_id = 'k_mgd' group by 1 order by 1`,
    );
    expect(rows.rows).toEqual([
      { source: 'operator', n: 9, cost: 7 * 3 + 2 },
      { source: 'user', n: 5, cost: 15 },
      { source: null, n: 4, cost: 4 },
    ]);

    await sendStream(client, [entries]);
    await sidecar.writer.flush();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(stripe.byEventFor('cus_mgd')).toEqual({ managed_openai: 18, api_requests: 2 });
  });
});
