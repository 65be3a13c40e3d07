import { LRUCache } from 'lru-cache';

export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`store unavailable: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'StoreUnavailableError';
  }
}

export interface RefreshingCacheOptions<V> {
  max: number;
  /** How long a found value is fresh. */
  ttlMs: number;
  /** How long "not found" is remembered. */
  negativeTtlMs: number;
  /** Hard bound on serving a stale value while the store is down. */
  maxStaleMs?: number;
  load: (key: string) => Promise<V | null>;
  onLoad?: () => void;
}

/**
 * A bounded cache in front of a Postgres lookup, for the Check's hot path: fresh hits cost no
 * I/O; concurrent misses of one key share one query; a failed refresh serves the stale value
 * (Postgres down must not lock out what we already know) and otherwise raises
 * StoreUnavailableError. Invalidations bump a generation so a lookup that raced one is not stored.
 */
export class RefreshingCache<V> {
  private readonly entries: LRUCache<string, { value: V | null; fetchedAt: number }>;
  private readonly inflight = new Map<string, Promise<V | null>>();
  private generation = 0;

  constructor(private readonly opts: RefreshingCacheOptions<V>) {
    this.entries = new LRUCache({ max: opts.max, ttl: opts.maxStaleMs ?? 6 * 60 * 60 * 1000 });
  }

  async get(key: string): Promise<V | null> {
    const cached = this.entries.get(key);
    if (cached && Date.now() - cached.fetchedAt < (cached.value ? this.opts.ttlMs : this.opts.negativeTtlMs)) {
      return cached.value;
    }
    let pending = this.inflight.get(key);
    if (!pending) {
      const generation = this.generation;
      this.opts.onLoad?.();
      pending = this.opts
        .load(key)
        .then((value) => {
          if (generation === this.generation) this.entries.set(key, { value, fetchedAt: Date.now() });
          return value;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    try {
      return await pending;
    } catch (err) {
      if (cached?.value) return cached.value;
      throw new StoreUnavailableError(err);
    }
  }

  invalidate(key: string): void {
    this.generation++;
    this.entries.delete(key);
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
