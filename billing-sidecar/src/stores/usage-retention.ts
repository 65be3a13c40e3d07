import type pg from 'pg';
import type { Logger } from '@tollgate/common';
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
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly opts: UsageRetentionOptions,
    private readonly metrics: BillingMetrics,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    await this.runOnce();
    this.timer = setInterval(() => void this.runOnce(), this.opts.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  runOnce(now = new Date()): Promise<void> {
    this.running ??= this.maintain(now).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async maintain(now: Date): Promise<void> {
    try {
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
    } catch (err) {
      this.metrics.usagePartitionFailures.inc();
      this.logger.error({ err }, 'usage partition maintenance failed; retrying at the next interval');
    }
  }
}
