import type { Logger } from '@tollgate/common';

export type UsageBatch = Map<string, { count: number; lastUsedAt: Date }>;

/**
 * Collects `last_used_at` and usage counts from allowed Checks (per key id, or per token jti)
 * and writes them in one statement per interval — never a query per request. Counts that fail to write are kept and
 * retried with the next batch, so a Postgres blip loses nothing.
 */
export class UsageBatcher {
  private pending = new Map<string, { count: number; lastUsedAt: Date }>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly write: (batch: UsageBatch) => Promise<void>,
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
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

  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = this.write(batch)
      .catch((err: Error) => {
        this.logger.warn({ err: err.message, keys: batch.size }, 'usage flush failed; will retry');
        for (const [id, u] of batch) {
          const e = this.pending.get(id);
          if (e) {
            e.count += u.count;
            if (u.lastUsedAt > e.lastUsedAt) e.lastUsedAt = u.lastUsedAt;
          } else this.pending.set(id, u);
        }
      })
      .finally(() => {
        this.flushing = undefined;
      });
    return this.flushing;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }
}
