import type { Queryable } from '../stores/key-store.js';
import { payloadOf, type WebhookEventType } from './events.js';

/**
 * Queues one delivery per enabled endpoint subscribed to the event, inside the caller's
 * transaction: the announcement commits with the change it announces or not at all. The
 * dispatcher (dispatcher.ts) sends what is queued. Returns how many deliveries were queued.
 */
export async function enqueueWebhook(db: Queryable, type: WebhookEventType, data: Record<string, unknown>): Promise<number> {
  const r = await db.query(
    `insert into webhook_deliveries (id, endpoint_id, event_type, payload)
     select 'msg_' || replace(gen_random_uuid()::text, '-', ''), id, $1, $2
       from webhook_endpoints where enabled and $1 = any(events)`,
    [type, payloadOf(type, data)],
  );
  return r.rowCount ?? 0;
}

/**
 * For events that time or usage bring about (expiry notices, quota thresholds): queues the event
 * only the first time this (subject, type, occasion) is announced, so replicas scanning at the
 * same moment, or one scanning again, announce it once. True when this call announced it.
 */
export async function announceOnce(
  db: Queryable,
  announcement: { subject: string; type: WebhookEventType; occasion: string },
  data: Record<string, unknown>,
): Promise<boolean> {
  const first = await db.query(`insert into webhook_announcements (subject, event_type, occasion) values ($1, $2, $3) on conflict do nothing`, [
    announcement.subject,
    announcement.type,
    announcement.occasion,
  ]);
  if (first.rowCount === 0) return false;
  await enqueueWebhook(db, announcement.type, data);
  return true;
}
