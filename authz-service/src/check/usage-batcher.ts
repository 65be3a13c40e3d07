import { type Logger, PeriodicTask } from '@tollgate/common';

export type UsageBatch = Map<string, { count: number; lastUsedAt: Date }>;

/**
 * Collects `last_used_at` and usage counts from allowed Checks (per key id, or per token jti)
 * and writes them in one statement per interval — never a query per request. Counts that fail to write are kept and
 * retried with the next batch, so a Postgres blip loses nothing.
 */
export class UsageBatcher {
  private pending = new Map<string, { count: number; lastUsedAt: Date }>();
  private readonly task: PeriodicTask;

  constructor(
    private readonly write: (batch: UsageBatch) => Promise<void>,
    private readonly logger: Logger,
    intervalMs: number,
  ) {
    this.task = new PeriodicTask(() => this.writePending(), {
      intervalMs,
      cadence: 'fixed-rate',
      onError: (err) => logger.warn({ err: (err as Error).message }, 'usage flush failed; will retry'),
    });
  }

  start(): void {
    void this.task.start();
  }

  record(keyId: string, at = new Date()): void {
    const e = this.pending.get(keyId);
    if (e) {
      e.count++;
      if (at > e.lastUsedAt) e.lastUsedAt = at;
    } else {
      this.pending.set(keyId, { count: 1, lastUsedAt: at });
    }
  }

  /** Writes what is pending, or joins the write under way. */
  async flush(): Promise<void> {
    await this.task.runNow();
  }

  private async writePending(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.write(batch);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, keys: batch.size }, 'usage flush failed; will retry');
      for (const [id, u] of batch) {
        const e = this.pending.get(id);
        if (e) {
          e.count += u.count;
          if (u.lastUsedAt > e.lastUsedAt) e.lastUsedAt = u.lastUsedAt;
        } else this.pending.set(id, u);
      }
    }
  }

  /** Stops the timer, waits for a write under way, then writes what came in meanwhile. */
  async stop(): Promise<void> {
    await this.task.stop();
    await this.flush();
  }
}
