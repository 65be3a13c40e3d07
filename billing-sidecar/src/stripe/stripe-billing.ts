import type pg from 'pg';
import { type Logger, PeriodicTask } from '@tollgate/common';
import type { BillingMetrics } from '../metrics.js';
import { claimDue, markParked, markRetry, markSent, outboxStats, sealWindow, type ClaimedEvent } from '../stores/stripe-outbox.js';
import type { MeterClient } from './meter-client.js';
import { CallSpacer, backoffMs } from './rate-limiter.js';

export interface StripeBillingOptions {
  eventName: string;
  intervalSeconds: number;
  maxCallsPerSecond: number;
  maxConcurrency: number;
  timeoutMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  drainIntervalMs: number;
}

/** The window (aligned to the interval, in UTC epoch time) that ended most recently before `now`. */
export function lastClosedWindow(now: number, intervalSeconds: number): Date {
  const ms = intervalSeconds * 1000;
  return new Date(Math.floor(now / ms) * ms - ms);
}

/**
 * Seals each aggregation window into the outbox once it has ended, and drains the outbox into
 * Stripe: at most `maxCallsPerSecond` calls, one call per customer at a time, exponential
 * backoff with jitter on 429 / 5xx / network errors (never sooner than Stripe's Retry-After),
 * and other 4xx parked with Stripe's message. A Stripe outage only grows the outbox.
 */
export class StripeBilling {
  private readonly task: PeriodicTask;
  private readonly spacer: CallSpacer;

  constructor(
    private readonly pool: pg.Pool,
    private readonly client: MeterClient,
    private readonly opts: StripeBillingOptions,
    private readonly metrics: BillingMetrics,
    private readonly logger: Logger,
  ) {
    this.spacer = new CallSpacer(opts.maxCallsPerSecond);
    this.task = new PeriodicTask(() => this.round(Date.now()), {
      intervalMs: opts.drainIntervalMs,
      runAtStart: true,
      onError: (err) => logger.error({ err }, 'Stripe billing round failed; will retry'),
    });
  }

  /** A round at once, then one every drain interval after the last ended. */
  start(): void {
    void this.task.start();
  }

  /** Ends the drain after the calls under way and waits for them. */
  stop(): Promise<void> {
    return this.task.stop();
  }

  /** One round: seal the last closed window, send what is due, refresh the outbox gauges. */
  private async round(now: number): Promise<void> {
    const sealed = await sealWindow(this.pool, this.opts.eventName, lastClosedWindow(now, this.opts.intervalSeconds));
    if (sealed > 0) this.logger.debug({ events: sealed }, 'sealed a billing window into the outbox');
    while (!this.task.stopped && (await this.drainOnce()) > 0) {
      // keep going while events are due; the spacer holds the call rate
    }
    const stats = await outboxStats(this.pool);
    this.metrics.outboxDepth.set({ status: 'pending' }, stats.pending);
    this.metrics.outboxDepth.set({ status: 'parked' }, stats.parked);
    this.metrics.outboxOldestAge.set(stats.oldestPendingAgeSeconds);
  }

  private async drainOnce(): Promise<number> {
    // The lease outlives a call that times out, so no other replica sends the event meanwhile.
    const due = await claimDue(this.pool, this.opts.maxConcurrency, this.opts.timeoutMs + 30_000);
    await Promise.all(due.map((e) => this.sendOne(e)));
    return due.length;
  }

  private async sendOne(event: ClaimedEvent): Promise<void> {
    await this.spacer.take();
    const outcome = await this.client.send(event);
    switch (outcome.kind) {
      case 'accepted':
      case 'duplicate':
        this.metrics.stripeCalls.inc({ outcome: outcome.kind });
        await markSent(this.pool, event.id);
        return;
      case 'retry': {
        this.metrics.stripeCalls.inc({ outcome: outcome.reason });
        const delay = Math.max(backoffMs(event.attempts, this.opts.retryBaseMs, this.opts.retryMaxMs), outcome.retryAfterMs ?? 0);
        this.logger.warn(
          { identifier: event.identifier, attempts: event.attempts, status: outcome.status, reason: outcome.reason, retryInMs: delay, error: outcome.message },
          'Stripe did not accept a meter event; retrying later',
        );
        await markRetry(this.pool, event.id, delay, outcome.status ?? null, outcome.message);
        return;
      }
      case 'park':
        this.metrics.stripeCalls.inc({ outcome: 'parked' });
        this.logger.error(
          { identifier: event.identifier, status: outcome.status, error: outcome.message },
          'Stripe refused a meter event; parked (see docs/billing.md to requeue)',
        );
        await markParked(this.pool, event.id, outcome.status, outcome.message);
        return;
    }
  }
}
