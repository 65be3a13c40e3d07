import { type Logger, PeriodicTask } from '@tollgate/common';
import type pg from 'pg';
import type { PlanCatalog } from '../domain/plans.js';
import { inTransaction } from '../stores/transaction.js';
import { EXPIRY_NOTICE_DAYS, QUOTA_THRESHOLD_PERCENTS, type WebhookEventType } from './events.js';
import { announceOnce } from './outbox.js';

const DAY_MS = 86_400_000;
/** Announcements are kept this long; every occasion they guard is in the past by then. */
const ANNOUNCEMENT_RETENTION = '62 days';

interface Expiring {
  id: string;
  expires_at: Date;
  data: Record<string, unknown>;
}

/** This month's quota use of a key (the Check's Redis counter; quota.threshold reads it). */
export type QuotaUseReader = (keyId: string, now: Date) => Promise<number>;

/**
 * Announces what time and usage bring about: key.expiring and token.expiring (7 days and 1 day
 * before), and quota.threshold (80, 90 and 100 % of a key's monthly quota, once each per month).
 * It scans on an interval, off the Check path; announceOnce makes each notice fire once however
 * many replicas scan. A key first seen already within a day of expiry gets the 1-day notice
 * only, not both at once.
 */
export class WebhookAnnouncer {
  private readonly task: PeriodicTask<number>;

  constructor(private readonly d: { pool: pg.Pool; quotaUsed: QuotaUseReader; plans: PlanCatalog; logger: Logger; intervalMs: number }) {
    this.task = new PeriodicTask(() => this.scan(), {
      intervalMs: d.intervalMs,
      // The first scan soon after start, not a whole (by default 60 s) interval later.
      firstDelayMs: Math.min(d.intervalMs, 1000),
      onError: (err) => d.logger.warn({ err: (err as Error).message }, 'webhook announcement scan failed; will retry'),
    });
  }

  start(): void {
    void this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** One scan; returns how many events it announced. */
  async scan(now = new Date()): Promise<number> {
    let announced = 0;
    const horizon = new Date(now.getTime() + EXPIRY_NOTICE_DAYS[0] * DAY_MS);
    const keys = await this.d.pool.query<{ id: string; user_id: string; name: string; expires_at: Date }>(
      `select id, user_id, name, expires_at from api_keys where is_active and revoked_at is null and expires_at > $1 and expires_at <= $2`,
      [now, horizon],
    );
    for (const k of keys.rows) {
      const data = { key_id: k.id, user_id: k.user_id, name: k.name, expires_at: k.expires_at.toISOString() };
      announced += await this.expiryNotice('key.expiring', `key:${k.id}`, { id: k.id, expires_at: k.expires_at, data }, now);
    }
    const tokens = await this.d.pool.query<{ jti: string; project: string; service: string; expires_at: Date }>(
      `select jti, project, service, expires_at from gateway_tokens where is_active and revoked_at is null and expires_at > $1 and expires_at <= $2`,
      [now, horizon],
    );
    for (const t of tokens.rows) {
      const data = { token_id: t.jti, project: t.project, service: t.service, expires_at: t.expires_at.toISOString() };
      announced += await this.expiryNotice('token.expiring', `token:${t.jti}`, { id: t.jti, expires_at: t.expires_at, data }, now);
    }
    announced += await this.quotaThresholds(now);
    await this.d.pool.query(`delete from webhook_announcements where announced_at < now() - interval '${ANNOUNCEMENT_RETENTION}'`);
    return announced;
  }

  private async expiryNotice(type: WebhookEventType, subject: string, e: Expiring, now: Date): Promise<number> {
    const left = e.expires_at.getTime() - now.getTime();
    const due = EXPIRY_NOTICE_DAYS.filter((days) => left <= days * DAY_MS);
    const nearest = Math.min(...due);
    // The occasion names the expiry itself: an extended key is told again about its new date.
    const occasion = (days: number) => `${days}d:${e.expires_at.toISOString()}`;
    return inTransaction(this.d.pool, async (db) => {
      let fired = 0;
      for (const days of due) {
        const data = { ...e.data, days_before: days };
        if (days === nearest) fired += (await announceOnce(db, { subject, type, occasion: occasion(days) }, data)) ? 1 : 0;
        // A farther notice that was never sent is now moot: mark it so it never goes out late.
        else
          await db.query(`insert into webhook_announcements (subject, event_type, occasion) values ($1, $2, $3) on conflict do nothing`, [
            subject,
            type,
            occasion(days),
          ]);
      }
      return fired;
    });
  }

  private async quotaThresholds(now: Date): Promise<number> {
    const month = `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
    // The quota the Check enforces: the key's own, else its plan's (domain/plans.ts).
    const quotaPlans = this.d.plans
      .list()
      .filter((p) => p.monthlyQuota !== null)
      .map((p) => p.name);
    const keys = await this.d.pool.query<{ id: string; user_id: string; name: string; monthly_quota: string | null; plan: string | null }>(
      `select id, user_id, name, monthly_quota, plan from api_keys
        where (monthly_quota is not null or plan = any($1)) and is_active and revoked_at is null`,
      [quotaPlans],
    );
    let announced = 0;
    for (const k of keys.rows) {
      const quota = k.monthly_quota === null ? this.d.plans.get(k.plan)?.monthlyQuota : Number(k.monthly_quota);
      if (!quota) continue;
      const used = await this.d.quotaUsed(k.id, now);
      const crossed = QUOTA_THRESHOLD_PERCENTS.filter((p) => used * 100 >= quota * p);
      if (crossed.length === 0) continue;
      announced += await inTransaction(this.d.pool, async (db) => {
        let fired = 0;
        for (const percent of crossed) {
          const data = { key_id: k.id, user_id: k.user_id, name: k.name, month, threshold_percent: percent, monthly_quota: quota, used };
          if (await announceOnce(db, { subject: `key:${k.id}`, type: 'quota.threshold', occasion: `${month}:${percent}` }, data)) fired++;
        }
        return fired;
      });
    }
    return announced;
  }
}
