import type pg from 'pg';
import { type Logger, PeriodicTask } from '@tollgate/common';
import { dropExpiredUsagePartitions, ensureUsagePartitions, listUsagePartitions } from '@tollgate/usage-model';
import type { BillingMetrics } from '../metrics.js';

export interface UsageRetentionOptions {
  /** Whole days of usage rows kept before today; 0 keeps them forever. */
  retentionDays: number;
  /** Day partitions kept ready after today, so a row never waits on a CREATE TABLE. */
  aheadDays: number;
  intervalMs: number;
}

/**
 * Keeps usage_records' day partitions created ahead and drops the expired ones: at start and
 * then on an interval, in every sidecar replica (the work is idempotent and serialised by an
 * advisory lock). A failed run is logged, counted and retried at the next tick; until then new
 * rows still land (in the default partition, at worst).
 */
export class UsageRetention {
  private readonly task: PeriodicTask;

  constructor(
    private readonly pool: pg.Pool,
    private readonly opts: UsageRetentionOptions,
    private readonly metrics: BillingMetrics,
    private readonly logger: Logger,
  ) {
    this.task = new PeriodicTask(() => this.maintain(new Date()), {
      intervalMs: opts.intervalMs,
      cadence: 'fixed-rate',
      runAtStart: true,
      onError: (err) => {
        metrics.usagePartitionFailures.inc();
        logger.error({ err }, 'usage partition maintenance failed; retrying at the next interval');
      },
    });
  }

  /** Resolves once the first run (partitions for today and ahead) is over. */
  start(): Promise<void> {
    return this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  private async maintain(now: Date): Promise<void> {
    const created = await ensureUsagePartitions(this.pool, now, this.opts.aheadDays);
    if (created.length) this.logger.info({ days: created.map((d) => d.toISOString().slice(0, 10)) }, 'created usage partitions');
    if (this.opts.retentionDays > 0) {
      const dropped = await dropExpiredUsagePartitions(this.pool, now, this.opts.retentionDays);
      if (dropped.length) {
        this.metrics.usagePartitionsDropped.inc(dropped.length);
        this.logger.info(
          { days: dropped.map((d) => d.toISOString().slice(0, 10)), retentionDays: this.opts.retentionDays },
          'dropped expired usage partitions',
        );
      }
    }
    this.metrics.usagePartitions.set((await listUsagePartitions(this.pool)).length);
  }
}
