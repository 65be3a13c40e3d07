import { hostname } from 'node:os';
import { z } from 'zod';
import { env, loadConfig, serviceBasics } from '@tollgate/common';
import { parseBillableRule } from './domain/billable.js';

const meterEventName = z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'letters, digits and _ . : - (at most 100)');
// As authz-service spells provider names (its vault and PROVIDER_ROUTES), lower-cased as it does.
const providerName = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;

/** STRIPE_MANAGED_METER_EVENTS: a JSON object, provider → meter event name. */
const managedMeterEvents = z
  .string()
  .default('{}')
  .transform((raw, ctx) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be JSON: an object of provider name to meter event name, {"openai":"managed_openai"}' });
      return z.NEVER;
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object of provider name to meter event name' });
      return z.NEVER;
    }
    const events = new Map<string, string>();
    for (const [provider, event] of Object.entries(parsed)) {
      const name = meterEventName.safeParse(event);
      if (!providerName.test(provider)) {
        ctx.addIssue({ code: 'custom', message: `"${provider}": provider names are letters, digits, _ or -, at most 32` });
      } else if (events.has(provider.toLowerCase())) {
        ctx.addIssue({ code: 'custom', message: `"${provider}": provider names are case-insensitive, and this one is named twice` });
      } else if (!name.success) {
        ctx.addIssue({ code: 'custom', message: `"${provider}": meter event names are letters, digits and _ . : - (at most 100)` });
      } else {
        events.set(provider.toLowerCase(), name.data);
      }
    }
    return events as ReadonlyMap<string, string>;
  });

const schema = z.object({
  ...serviceBasics('BILLING', { grpc: 9292, http: 9293 }),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(2).max(200).default(6),

  /**
   * Envoy's local JSON access log (the same requests as the gRPC stream). Read from where it
   * was left on every start and then followed, so requests logged while the sidecar was down
   * are still counted. Unset: gRPC only (an outage of the sidecar then loses usage).
   */
  ENVOY_ACCESS_LOG_PATH: z.string().min(1).optional(),
  ACCESS_LOG_POLL_INTERVAL_MS: z.coerce.number().int().min(20).max(60_000).default(250),
  /**
   * Once this many bytes of the file are read, the sidecar renames it, has Envoy reopen its
   * logs, finishes the renamed file and deletes it (docs/billing.md, "Rotation"). 0: never
   * (rotate it some other way, or the disk fills).
   */
  ACCESS_LOG_ROTATE_BYTES: z.coerce
    .number()
    .int()
    .refine((v) => v === 0 || (v >= 4096 && v <= 2 ** 40), '0 (off) or 4096 to 2^40 bytes')
    .default(64 * 1024 * 1024),
  /** Envoy's admin interface (or a listener forwarding POST /reopen_logs to it), for rotation. */
  ENVOY_ADMIN_URL: env.url(['http', 'https']).default('http://127.0.0.1:9901'),
  /**
   * Names this sidecar's files in the offset table (with device and inode), so sidecars on
   * different hosts reading the same path keep separate offsets. Must stay the same across
   * restarts for as long as the log's volume lives: the pod name (the default, the hostname)
   * in Kubernetes; set it in Compose, where the hostname changes when the container is recreated.
   */
  ACCESS_LOG_HOST_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,253}$/, 'letters, digits and _ . : - (at most 253)')
    .default(hostname()),

  /** Statuses that are recorded but not billed: exact codes and classes, e.g. `429,5xx`. */
  BILLING_NON_BILLABLE_STATUSES: z
    .string()
    .default('429,5xx')
    .transform((v, ctx) => {
      try {
        return parseBillableRule(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
  /** Usage rows per INSERT, and the longest a received entry waits before it is written. */
  BILLING_BATCH_SIZE: z.coerce.number().int().min(1).max(20_000).default(2_000),
  BILLING_FLUSH_INTERVAL_MS: z.coerce.number().int().min(1).max(60_000).default(200),
  /** Entries held in memory before gRPC streams are paused until Postgres catches up. */
  BILLING_MAX_BUFFERED: z.coerce.number().int().min(100).max(1_000_000).default(10_000),

  /**
   * Whole days of usage rows kept before today (usage_records is partitioned by day; older
   * days are dropped, the hourly and daily roll-ups are kept). 0: keep every row forever.
   */
  USAGE_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(35),

  /** Stripe secret key; unset switches the Stripe step off (usage is still recorded). */
  STRIPE_API_KEY: z.string().min(1).optional(),
  /** Where the Stripe SDK sends requests (stripe-mock, a proxy); unset means Stripe's API. */
  STRIPE_API_BASE: env.url(['http', 'https']).optional(),
  /** The billing meter's `event_name`. */
  STRIPE_METER_EVENT_NAME: meterEventName.default('api_requests'),
  /**
   * Managed usage (requests served with an operator's provider credential) per provider on a
   * meter of its own, JSON {"openai":"managed_openai"}: such requests go to that meter instead of
   * STRIPE_METER_EVENT_NAME. A provider not named here bills its managed usage on
   * STRIPE_METER_EVENT_NAME (docs/billing.md, "Cost allocation and managed usage").
   */
  STRIPE_MANAGED_METER_EVENTS: managedMeterEvents,
  /** `all`: every billable request goes to Stripe; `managed`: only requests served with operator credentials. */
  STRIPE_BILLED_USAGE: z.enum(['all', 'managed']).default('all'),
  /** Usage is summed per Stripe customer over this many seconds, one meter event each. */
  STRIPE_AGGREGATION_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
  /** Calls per second to the meter event endpoint (Stripe allows 1000/s live, less in test mode). */
  STRIPE_MAX_CALLS_PER_SECOND: z.coerce.number().min(0.1).max(1000).default(25),
  STRIPE_MAX_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  STRIPE_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  STRIPE_RETRY_BASE_MS: z.coerce.number().int().min(1).max(600_000).default(1_000),
  STRIPE_RETRY_MAX_MS: z.coerce.number().int().min(1).max(86_400_000).default(300_000),
  STRIPE_DRAIN_INTERVAL_MS: z.coerce.number().int().min(10).max(60_000).default(1_000),
});

export type BillingConfig = z.output<typeof schema>;

export function loadBillingConfig(source: NodeJS.ProcessEnv = process.env): BillingConfig {
  return loadConfig(schema, source);
}
