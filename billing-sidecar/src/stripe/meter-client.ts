import Stripe from 'stripe';

/** One aggregated meter event as the outbox holds it. */
export interface MeterEvent {
  identifier: string;
  eventName: string;
  stripeCustomerId: string;
  value: number;
  /** Seconds since the epoch: the start of the aggregation window. */
  timestamp: number;
}

/**
 * What a call's result means for the outbox row:
 *   accepted / duplicate → sent (a duplicate identifier proves Stripe already has the usage);
 *   retry → pending again, not before `retryAfterMs` when Stripe said so;
 *   park → a 4xx that retrying cannot fix, kept with Stripe's message for an operator.
 */
export type MeterOutcome =
  | { kind: 'accepted' }
  | { kind: 'duplicate' }
  | { kind: 'retry'; reason: 'rate_limited' | 'server_error' | 'network_error'; status?: number; message: string; retryAfterMs?: number }
  | { kind: 'park'; status: number; message: string };

export interface MeterClient {
  send(event: MeterEvent): Promise<MeterOutcome>;
}

export interface StripeMeterClientOptions {
  apiKey: string;
  /** e.g. http://127.0.0.1:12111 for stripe-mock; unset → Stripe's API. */
  apiBase?: string;
  timeoutMs: number;
}

/** Stripe's answer to a re-sent identifier (400): the event is already recorded. */
const DUPLICATE_IDENTIFIER = /already exists with identifier|identifier .*already exists|duplicate_meter_event/i;

export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export function classifyStripeError(err: unknown): MeterOutcome {
  const e = err as { type?: string; statusCode?: number; message?: string; code?: string; headers?: Record<string, string> };
  const message = String(e?.message ?? err).slice(0, 1000);
  const status = e?.statusCode;
  if (e?.type === 'StripeConnectionError' || status === undefined) return { kind: 'retry', reason: 'network_error', message };
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(e.headers?.['retry-after']);
    return { kind: 'retry', reason: 'rate_limited', status, message, ...(retryAfterMs !== undefined && { retryAfterMs }) };
  }
  if (status >= 500) return { kind: 'retry', reason: 'server_error', status, message };
  if (status === 400 && (DUPLICATE_IDENTIFIER.test(message) || e.code === 'duplicate_meter_event')) return { kind: 'duplicate' };
  return { kind: 'park', status, message };
}

/** Sends meter events with the official SDK; the outbox owns retries, so the SDK's are off. */
export function createStripeMeterClient(opts: StripeMeterClientOptions): MeterClient {
  const base = opts.apiBase ? new URL(opts.apiBase) : undefined;
  const stripe = new Stripe(opts.apiKey, {
    maxNetworkRetries: 0,
    timeout: opts.timeoutMs,
    telemetry: false,
    ...(base && {
      host: base.hostname,
      port: base.port || (base.protocol === 'http:' ? 80 : 443),
      protocol: base.protocol === 'http:' ? 'http' : 'https',
    }),
  });
  return {
    async send(event) {
      try {
        await stripe.billing.meterEvents.create({
          event_name: event.eventName,
          identifier: event.identifier,
          timestamp: event.timestamp,
          payload: { stripe_customer_id: event.stripeCustomerId, value: String(event.value) },
        });
        return { kind: 'accepted' };
      } catch (err) {
        return classifyStripeError(err);
      }
    },
  };
}
