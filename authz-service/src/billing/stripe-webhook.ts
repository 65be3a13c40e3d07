import Stripe from 'stripe';
import { Counter, type Registry } from 'prom-client';
import { HttpError, type Logger } from '@tollgate/common';
import type pg from 'pg';
import type { Plan, PlanCatalog } from '../domain/plans.js';
import { AuditStore } from '../stores/audit-store.js';
import type { KeyEventPublisher } from '../stores/key-events.js';
import { afterCommit, inTransaction } from '../stores/transaction.js';
import type { WebhookEventType } from '../webhooks/events.js';
import { enqueueWebhook } from '../webhooks/outbox.js';

/** Subscription statuses that suspend the customer's keys; active/trialing lift it; the rest change nothing. */
const SUSPENDING = new Set(['unpaid', 'paused', 'canceled']);
const PAYING = new Set(['active', 'trialing']);
/** A subscription in these states puts the customer's keys on the plan of its price (past_due: Stripe still retries payment). */
const PLAN_IN_FORCE = new Set([...PAYING, 'past_due']);
/** Stripe's meter alerts (thin events): recorded so `tollgate usage --billing` and the metric show them. */
const METER_ERRORS = new Set(['v1.billing.meter.error_report_triggered', 'v1.billing.meter.no_meter_found']);

export type WebhookOutcome = 'applied' | 'duplicate' | 'stale' | 'ignored';

interface StripeishEvent {
  id: string;
  type: string;
  /** Unix seconds (snapshot events) or an ISO time (thin v2 events). */
  created: number | string;
  data?: { object?: Record<string, unknown> };
  related_object?: { id?: string };
}

const audit = new AuditStore();

/** The customer id of a subscription or invoice (expanded or not). */
function customerOf(object: Record<string, unknown> | undefined): string | null {
  const c = object?.customer;
  if (typeof c === 'string') return c;
  if (c && typeof c === 'object' && typeof (c as { id?: unknown }).id === 'string') return (c as { id: string }).id;
  return null;
}

function isThinNotification(raw: string): boolean {
  try {
    return (JSON.parse(raw) as { object?: unknown })?.object === 'v2.core.event';
  } catch {
    return false;
  }
}

function meterSummary(e: StripeishEvent): string | null {
  const data = e.data as { developer_message_summary?: unknown } | undefined;
  return typeof data?.developer_message_summary === 'string' ? data.developer_message_summary.slice(0, 500) : null;
}

function createdAt(e: StripeishEvent): Date {
  return typeof e.created === 'number' ? new Date(e.created * 1000) : new Date(e.created);
}

/**
 * POST /webhooks/stripe: verifies the signature over the raw body, then applies the event once
 * (by id) and only if it is not older than the last one applied to the same Stripe object. A
 * suspension or resumption publishes key_changed for every key of the customer, so every
 * replica's cache drops them within a second (the revocation guarantee's path); so does a
 * subscription's price moving the customer's keys to another plan.
 */
export class StripeWebhooks {
  private readonly stripe = new Stripe('sk_test_unused_for_signature_checks');
  private readonly events: Counter<'type' | 'outcome'>;

  constructor(
    private readonly d: { pool: pg.Pool; keyEvents: KeyEventPublisher; logger: Logger; secrets: readonly string[]; registry: Registry; plans: PlanCatalog },
  ) {
    this.events = new Counter({
      name: 'tollgate_stripe_webhook_events_total',
      help: 'Stripe webhook deliveries by event type and outcome (applied, duplicate, stale, ignored); meter errors are type v1.billing.meter.*',
      labelNames: ['type', 'outcome'],
      registers: [d.registry],
    });
  }

  /** Verifies and parses; throws 400 invalid_stripe_signature (nothing changed) when no secret verifies it. */
  verify(raw: string | undefined, signature: string | undefined): StripeishEvent {
    if (!this.d.secrets.length) throw new HttpError(400, 'invalid_stripe_signature', 'No STRIPE_WEBHOOK_SECRET is configured: no delivery can be verified');
    if (raw === undefined || !signature) throw new HttpError(400, 'invalid_stripe_signature', 'The request has no Stripe-Signature header or no body');
    // Meter alerts come as thin event notifications (object v2.core.event), which the SDK verifies
    // with its own method (constructEvent refuses them); both check the same signature.
    const thin = isThinNotification(raw);
    for (const secret of this.d.secrets) {
      try {
        const verified = thin ? this.stripe.parseEventNotification(raw, signature, secret) : this.stripe.webhooks.constructEvent(raw, signature, secret);
        return verified as unknown as StripeishEvent;
      } catch {
        // Next secret: during a rotation a delivery is signed with only one of them.
      }
    }
    throw new HttpError(400, 'invalid_stripe_signature', 'The Stripe-Signature does not verify (wrong secret, altered body, or older than five minutes)');
  }

  async apply(event: StripeishEvent): Promise<WebhookOutcome> {
    const object = event.data?.object;
    const objectId = typeof object?.id === 'string' ? object.id : (event.related_object?.id ?? null);
    const customer = customerOf(object);
    const created = createdAt(event);
    const changed: { id: string }[] = [];
    const replanned: { id: string }[] = [];
    const outcome = await inTransaction(this.d.pool, async (db): Promise<WebhookOutcome> => {
      const fresh = await db.query(`insert into stripe_webhook_events (event_id, type) values ($1, $2) on conflict do nothing`, [event.id, event.type]);
      if (fresh.rowCount === 0) return 'duplicate';
      if (objectId) {
        // Stripe does not promise order: an event older than the last applied one for this
        // object would undo a newer state.
        const newer = await db.query(
          `insert into stripe_object_versions (object_id, last_created, last_event_id) values ($1, $2, $3)
           on conflict (object_id) do update set last_created = excluded.last_created, last_event_id = excluded.last_event_id
             where stripe_object_versions.last_created <= excluded.last_created`,
          [objectId, created, event.id],
        );
        if (newer.rowCount === 0) return 'stale';
      }
      const action = this.actionFor(event);
      if (action === 'ignore') return 'ignored';
      const plan = this.planOf(event);
      if (plan && customer) replanned.push(...(await this.putOnPlan(db, event, customer, plan)));
      if ((action === 'suspend' || action === 'resume') && customer) {
        const sql =
          action === 'suspend'
            ? `update api_keys set billing_suspended_at = now(), updated_at = now() where stripe_customer_id = $1 and billing_suspended_at is null returning id, user_id`
            : `update api_keys set billing_suspended_at = null, updated_at = now() where stripe_customer_id = $1 and billing_suspended_at is not null returning id, user_id`;
        const rows = await db.query<{ id: string; user_id: string }>(sql, [customer]);
        for (const r of rows.rows) {
          changed.push(r);
          await audit.record(
            {
              actor: 'stripe',
              action: action === 'suspend' ? 'key.billing_suspended' : 'key.billing_resumed',
              keyId: r.id,
              userId: r.user_id,
              details: { event_id: event.id, event_type: event.type, stripe_customer_id: customer },
            },
            db,
          );
        }
      }
      const announced = action === 'suspend' ? 'billing.suspended' : action === 'resume' ? 'billing.resumed' : event.type;
      // Operators hear of a suspension or resumption that changed keys, and of every failed payment.
      const told: WebhookEventType | null =
        announced === 'invoice.payment_failed' || ((announced === 'billing.suspended' || announced === 'billing.resumed') && changed.length > 0)
          ? announced
          : null;
      if (told) {
        await enqueueWebhook(db, told, {
          stripe_customer_id: customer,
          stripe_event_id: event.id,
          stripe_event_type: event.type,
          stripe_object_id: objectId,
          status: typeof object?.status === 'string' ? object.status : null,
          key_ids: changed.map((k) => k.id),
        });
      }
      await db.query(`insert into billing_events (event_id, type, stripe_customer_id, details) values ($1, $2, $3, $4)`, [
        event.id,
        announced,
        customer,
        {
          stripe_type: event.type,
          status: object?.status ?? null,
          keys: changed.map((k) => k.id),
          // Meter alerts name the meter (thin events: related_object) and may carry Stripe's summary.
          ...(METER_ERRORS.has(event.type) ? { meter_id: event.related_object?.id ?? null, summary: meterSummary(event) } : {}),
        },
      ]);
      await audit.record(
        {
          actor: 'stripe',
          action: 'billing.event',
          keyId: null,
          userId: null,
          details: { event_id: event.id, event_type: event.type, stripe_customer_id: customer, applied: announced },
        },
        db,
      );
      return 'applied';
    });
    this.events.inc({ type: event.type, outcome });
    for (const id of new Set([...changed, ...replanned].map((k) => k.id)))
      await afterCommit(this.d.logger, { keyId: id }, () => this.d.keyEvents.keyChanged(id));
    return outcome;
  }

  /** The plan of a subscription in force: the first of its items whose price PLANS maps (by id, else lookup key). */
  private planOf(event: StripeishEvent): Plan | undefined {
    if (event.type !== 'customer.subscription.created' && event.type !== 'customer.subscription.updated') return undefined;
    const object = event.data?.object;
    if (typeof object?.status !== 'string' || !PLAN_IN_FORCE.has(object.status)) return undefined;
    const items = (object.items as { data?: unknown } | undefined)?.data;
    if (!Array.isArray(items)) return undefined;
    for (const item of items as { price?: { id?: unknown; lookup_key?: unknown } }[]) {
      const plan = this.d.plans.forPrice(item?.price);
      if (plan) return plan;
    }
    return undefined;
  }

  /** Puts every key of the customer not yet on `plan` on it, each audited as key.plan_changed. */
  private async putOnPlan(db: pg.PoolClient, event: StripeishEvent, customer: string, plan: Plan): Promise<{ id: string }[]> {
    const rows = await db.query<{ id: string; user_id: string; previous: string | null }>(
      `with old as (select id, plan from api_keys where stripe_customer_id = $1 and plan is distinct from $2 for update)
       update api_keys k set plan = $2, updated_at = now() from old where k.id = old.id
       returning k.id, k.user_id, old.plan as previous`,
      [customer, plan.name],
    );
    for (const r of rows.rows) {
      await audit.record(
        {
          actor: 'stripe',
          action: 'key.plan_changed',
          keyId: r.id,
          userId: r.user_id,
          details: { event_id: event.id, event_type: event.type, stripe_customer_id: customer, from: r.previous, to: plan.name },
        },
        db,
      );
    }
    return rows.rows;
  }

  private actionFor(event: StripeishEvent): 'suspend' | 'resume' | 'record' | 'ignore' {
    const status = event.data?.object?.status;
    switch (event.type) {
      case 'customer.subscription.deleted':
        return 'suspend';
      case 'customer.subscription.created':
      case 'customer.subscription.updated':
        if (typeof status === 'string' && SUSPENDING.has(status)) return 'suspend';
        if (typeof status === 'string' && PAYING.has(status)) return 'resume';
        return 'record';
      case 'invoice.paid':
        return 'resume';
      case 'invoice.payment_failed':
        return 'record';
      default:
        return METER_ERRORS.has(event.type) ? 'record' : 'ignore';
    }
  }
}
