import { LRUCache } from 'lru-cache';
import type { HashMatch } from '../stores/key-store.js';

/**
 * In-process cache of key lookups, keyed by key hash, bounded in size.
 * - Known keys stay `fresh` for KEY_CACHE_TTL_MS; after that they are refreshed from Postgres,
 *   but kept (stale) so that a Postgres outage does not lock out keys we have seen.
 * - A key in use is refreshed ahead of expiry: in the last fifth of its TTL a hit is answered from
 *   the cache and marked `refreshDue`, so the resolver re-reads it in the background and a busy
 *   key never makes a Check wait on Postgres. What is served is never older than the TTL.
 * - Unknown hashes are cached for NEGATIVE_CACHE_TTL_MS, so a flood of bad keys costs one
 *   Postgres query per distinct key, not one per request.
 * - A change to a key (published by whichever replica made it) drops every hash of that key.
 */
export interface CachedLookup {
  match: HashMatch | null;
  fetchedAt: number;
}

/** Share of the TTL after which a hit also triggers a background refresh. */
const REFRESH_AHEAD_AT = 0.8;

export class KeyCache {
  private readonly entries: LRUCache<string, CachedLookup>;
  /** key id → hashes cached for it (current and, during a rotation grace, previous). */
  private readonly hashesById = new Map<string, Set<string>>();
  /** Bumped by every invalidation, so a lookup that raced one does not store what it read. */
  generation = 0;

  constructor(
    private readonly opts: { maxEntries: number; ttlMs: number; negativeTtlMs: number; maxStaleMs?: number },
  ) {
    this.entries = new LRUCache<string, CachedLookup>({
      max: opts.maxEntries,
      // Hard bound on staleness: even through a long Postgres outage, a key is not trusted forever.
      ttl: opts.maxStaleMs ?? 6 * 60 * 60 * 1000,
      ttlAutopurge: false,
      dispose: (value, hash) => this.unindex(value, hash),
    });
  }

  get(hash: string, now = Date.now()): { entry: CachedLookup; fresh: boolean; refreshDue: boolean } | undefined {
    const entry = this.entries.get(hash);
    if (!entry) return undefined;
    const age = now - entry.fetchedAt;
    if (!entry.match) return { entry, fresh: age < this.opts.negativeTtlMs, refreshDue: false };
    const fresh = age < this.opts.ttlMs;
    return { entry, fresh, refreshDue: fresh && age >= this.opts.ttlMs * REFRESH_AHEAD_AT };
  }

  set(hash: string, match: HashMatch | null, generation = this.generation, now = Date.now()): void {
    if (generation !== this.generation) return;
    const entry = { match, fetchedAt: now };
    this.entries.set(hash, entry);
    if (match) {
      let set = this.hashesById.get(match.key.id);
      if (!set) this.hashesById.set(match.key.id, (set = new Set()));
      set.add(hash);
    }
  }

  invalidateKey(keyId: string): number {
    this.generation++;
    const hashes = this.hashesById.get(keyId);
    if (!hashes) return 0;
    const n = hashes.size;
    for (const h of [...hashes]) this.entries.delete(h);
    this.hashesById.delete(keyId);
    return n;
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
    this.hashesById.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private unindex(value: CachedLookup, hash: string): void {
    if (!value.match) return;
    const set = this.hashesById.get(value.match.key.id);
    if (!set) return;
    set.delete(hash);
    if (set.size === 0) this.hashesById.delete(value.match.key.id);
  }
}
