import type { UsageRecord } from './usage-record.js';

/**
 * Which Stripe meter a billable request's cost units go to (docs/billing.md, "Cost allocation and managed usage").
 * Requests served with an operator credential (managed usage) go to their provider's meter
 * when STRIPE_MANAGED_METER_EVENTS names one, and only there, so they are never billed twice;
 * everything else goes to STRIPE_METER_EVENT_NAME, unless STRIPE_BILLED_USAGE=managed, when
 * only managed usage reaches Stripe at all.
 */
export interface MeterRouting {
  /** STRIPE_METER_EVENT_NAME. */
  defaultEvent: string;
  /** STRIPE_MANAGED_METER_EVENTS: provider (lower case) → event name. */
  managedEvents: ReadonlyMap<string, string>;
  /** STRIPE_BILLED_USAGE: every billable request, or only those served with operator credentials. */
  billed: 'all' | 'managed';
}

/** The meter event name for a record, or null when its usage is not sent to Stripe. */
export function meterEventFor(routing: MeterRouting, r: Pick<UsageRecord, 'credentialSource' | 'provider'>): string | null {
  if (r.credentialSource === 'operator') return (r.provider && routing.managedEvents.get(r.provider)) || routing.defaultEvent;
  return routing.billed === 'all' ? routing.defaultEvent : null;
}
