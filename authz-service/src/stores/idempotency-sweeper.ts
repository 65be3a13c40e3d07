import type pg from 'pg';
import { type Logger, PeriodicTask } from '@tollgate/common';
import { IdempotencyStore } from './idempotency-store.js';

/** Rows deleted per statement: short enough not to hold locks or bloat one transaction. */
const SWEEP_BATCH = 1000;
/** Statements per sweep at most; a larger backlog is finished by the next sweeps. */
const SWEEP_MAX_BATCHES = 50;

/**
 * Purges expired Idempotency-Key records (older than IDEMPOTENCY_TTL_HOURS) every
 * IDEMPOTENCY_SWEEP_INTERVAL_MS, in bounded batches. Every replica sweeps; they skip each
 * other's rows. A failed sweep is logged and retried at the next interval.
 */
export class IdempotencySweeper {
  private readonly store = new IdempotencyStore();
  private readonly task: PeriodicTask<number>;

  constructor(
    private readonly pool: pg.Pool,
    private readonly logger: Logger,
    intervalMs: number,
  ) {
    this.task = new PeriodicTask(() => this.purge(), {
      intervalMs,
      cadence: 'fixed-rate',
      onError: (err) => logger.warn({ err: (err as Error).message }, 'idempotency sweep failed; retrying at the next interval'),
    });
  }

  start(): void {
    void this.task.start();
  }

  /** One sweep (never two at once): how many records it removed. */
  async sweep(): Promise<number> {
    return (await this.task.runNow()) ?? 0;
  }

  private async purge(): Promise<number> {
    let removed = 0;
    try {
      for (let i = 0; i < SWEEP_MAX_BATCHES; i++) {
        const n = await this.store.purgeExpired(this.pool, SWEEP_BATCH);
        removed += n;
        if (n < SWEEP_BATCH) break;
      }
      if (removed > 0) this.logger.info({ removed }, 'purged expired idempotency records');
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, removed }, 'idempotency sweep failed; retrying at the next interval');
    }
    return removed;
  }

  stop(): Promise<void> {
    return this.task.stop();
  }
}
