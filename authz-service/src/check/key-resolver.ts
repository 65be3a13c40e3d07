import type { Counter } from 'prom-client';
import type { KeyStore, HashMatch } from '../stores/key-store.js';
import { RefreshingCache } from './refreshing-cache.js';

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

export interface KeyCacheSettings {
  maxEntries: number;
  negativeMaxEntries: number;
  ttlMs: number;
  negativeTtlMs: number;
  maxStaleMs: number;
  /** See RefreshingCacheOptions.synced: the key-event feed's state. */
  synced?: () => boolean;
}

/**
 * Finds the key for a presented secret's hashes, through the shared RefreshingCache policy
 * (fresh hits cost no I/O, refresh-ahead, coalesced lookups, bounded serve-stale). Entries are
 * cached under the hash the request will present next time (the newest HMAC secret's) and
 * tagged with the key's id, so a change to a key drops every hash cached for it (current and,
 * during a rotation grace, previous). An unknown hash while Postgres fails raises
 * KeyStoreUnavailableError (503), never a 401 that would wrongly call a valid key invalid.
 */
export class KeyResolver {
  readonly cache: RefreshingCache<HashMatch, string[]>;

  constructor(
    store: KeyStore,
    settings: KeyCacheSettings,
    metrics: ResolverMetrics,
  ) {
    this.cache = new RefreshingCache<HashMatch, string[]>({
      max: settings.maxEntries,
      negativeMax: settings.negativeMaxEntries,
      ttlMs: settings.ttlMs,
      negativeTtlMs: settings.negativeTtlMs,
      maxStaleMs: settings.maxStaleMs,
      synced: settings.synced,
      tagsOf: (match) => [match.key.id],
      load: async (primary, hashes) => {
        try {
          return await store.findByHash(hashes ?? [primary]);
        } catch (err) {
          metrics.postgresErrors.inc();
          throw err;
        }
      },
      onLoad: () => metrics.lookups.inc(),
      unavailable: (cause) => new KeyStoreUnavailableError(cause),
      onResult: (result) => metrics.cache.inc({ result }),
    });
  }

  /** Whether resolve() would answer these hashes from the cache, without Postgres. */
  isCached(hashes: string[]): boolean {
    return this.cache.answersWithoutLookup(hashes[0]!);
  }

  resolve(hashes: string[]): Promise<HashMatch | null> {
    return this.cache.get(hashes[0]!, hashes);
  }

  /** Drops every hash cached for this key; returns how many. */
  invalidateKey(keyId: string): number {
    return this.cache.invalidateTag(keyId);
  }

  clear(): void {
    this.cache.clear();
  }
}
