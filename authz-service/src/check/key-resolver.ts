import { Counter, Gauge, type Registry } from 'prom-client';
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

export function createResolverMetrics(registry: Registry): ResolverMetrics {
  return {
    cache: new Counter({
      name: 'tollgate_authz_key_cache_total',
      help: 'Key lookups by cache result (hit, negative_hit, stale, miss)',
      labelNames: ['result'],
      registers: [registry],
    }),
    lookups: new Counter({ name: 'tollgate_authz_key_lookups_total', help: 'Key lookups sent to Postgres', registers: [registry] }),
    postgresErrors: new Counter({ name: 'tollgate_authz_postgres_errors_total', help: 'Failed key lookups in Postgres', registers: [registry] }),
  };
}

/** Reports the resolver's cache sizes at each scrape. */
export function registerKeyCacheGauge(registry: Registry, resolver: KeyResolver): void {
  new Gauge({
    name: 'tollgate_authz_key_cache_entries',
    help: 'Entries in the key cache (kind: found keys, or unknown hashes in their own LRU)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const { found, missing } = resolver.cache.sizes;
      this.set({ kind: 'found' }, found);
      this.set({ kind: 'unknown' }, missing);
    },
  });
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

  constructor(store: KeyStore, settings: KeyCacheSettings, metrics: ResolverMetrics) {
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
