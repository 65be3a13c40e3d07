import type { Counter } from 'prom-client';
import type { KeyStore, HashMatch } from '../stores/key-store.js';
import type { KeyCache } from './key-cache.js';

export class KeyStoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`key store unavailable: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'KeyStoreUnavailableError';
  }
}

export interface ResolverMetrics {
  cache: Counter<'result'>;
  /** Queries actually sent to Postgres (concurrent misses of one hash share one). */
  lookups: Counter;
  postgresErrors: Counter;
}

/**
 * Finds the key for a presented secret's hashes: from the cache when fresh (no I/O at all),
 * else from Postgres with concurrent lookups of the same hash coalesced into one query.
 * When Postgres fails, a stale cached key is still served; an unknown hash raises
 * KeyStoreUnavailableError (503), never a 401 that would wrongly call a valid key invalid.
 */
export class KeyResolver {
  private readonly inflight = new Map<string, Promise<HashMatch | null>>();

  constructor(
    private readonly store: KeyStore,
    private readonly cache: KeyCache,
    private readonly metrics: ResolverMetrics,
  ) {}

  async resolve(hashes: string[]): Promise<HashMatch | null> {
    const primary = hashes[0]!;
    const cached = this.cache.get(primary);
    if (cached?.fresh) {
      this.metrics.cache.inc({ result: cached.entry.match ? 'hit' : 'negative_hit' });
      // Refresh-ahead: this Check is answered now; the re-read runs beside it, and a failure
      // leaves the entry as it was (the blocking path below handles Postgres being down).
      if (cached.refreshDue) this.pending(hashes).catch(() => {});
      return cached.entry.match;
    }
    this.metrics.cache.inc({ result: cached ? 'stale' : 'miss' });
    try {
      return await this.pending(hashes);
    } catch (err) {
      if (cached?.entry.match) return cached.entry.match;
      throw new KeyStoreUnavailableError(err);
    }
  }

  /** Whether resolve() would answer these hashes from the cache, without Postgres. */
  isCached(hashes: string[]): boolean {
    return this.cache.get(hashes[0]!)?.fresh === true;
  }

  /** The lookup in flight for these hashes, started if there is none: one query per hash at a time. */
  private pending(hashes: string[]): Promise<HashMatch | null> {
    const primary = hashes[0]!;
    let pending = this.inflight.get(primary);
    if (!pending) {
      pending = this.lookup(hashes).finally(() => this.inflight.delete(primary));
      this.inflight.set(primary, pending);
    }
    return pending;
  }

  private async lookup(hashes: string[]): Promise<HashMatch | null> {
    const generation = this.cache.generation;
    let match: HashMatch | null;
    this.metrics.lookups.inc();
    try {
      match = await this.store.findByHash(hashes);
    } catch (err) {
      this.metrics.postgresErrors.inc();
      throw err;
    }
    // Cache under the hash the request will present next time (the newest secret's).
    this.cache.set(hashes[0]!, match, generation);
    return match;
  }
}
