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
    const age = cached ? Date.now() - cached.fetchedAt : Infinity;
    if (cached && age < (cached.value ? this.opts.ttlMs : this.opts.negativeTtlMs)) {
      // Refresh-ahead, as in the key cache: a value in use is re-read before it expires, beside
      // the request that noticed, so a busy entry never makes a Check wait on the store.
      if (cached.value && age >= this.opts.ttlMs * 0.8) this.load(key).catch(() => {});
      return cached.value;
    }
    try {
      return await this.load(key);
    } catch (err) {
      if (cached?.value) return cached.value;
      throw new StoreUnavailableError(err);
    }
  }

  /** The load in flight for this key, started if there is none. */
  private load(key: string): Promise<V | null> {
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
    return pending;
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
