/**
 * The events Tollgate announces to operators' webhook endpoints: a closed list, so an endpoint
 * subscribing to a misspelt type is refused at registration rather than silently never called.
 * A payload carries ids, names and dates, never a key, token, hash or provider secret.
 */
export const WEBHOOK_EVENT_TYPES = [
  'key.created',
  'key.revoked',
  'key.rotated',
  'key.expiring',
  'token.expiring',
  'quota.threshold',
  'billing.suspended',
  'billing.resumed',
  'invoice.payment_failed',
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Days before expiry at which key.expiring and token.expiring fire, once each. */
export const EXPIRY_NOTICE_DAYS = [7, 1] as const;

/** Shares of a monthly quota at which quota.threshold fires, once each per month. */
export const QUOTA_THRESHOLD_PERCENTS = [80, 90, 100] as const;

/** What a receiver gets as the body: the Standard Webhooks shape (type, timestamp, data). */
export interface WebhookPayload {
  type: WebhookEventType;
  timestamp: string;
  data: Record<string, unknown>;
}

export function payloadOf(type: WebhookEventType, data: Record<string, unknown>, at = new Date()): WebhookPayload {
  return { type, timestamp: at.toISOString(), data };
}
