import { LRUCache } from 'lru-cache';

export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`store unavailable: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'StoreUnavailableError';
  }
}

type CacheResult = 'hit' | 'negative_hit' | 'stale' | 'miss';

export interface RefreshingCacheOptions<V, A> {
  /** Found values kept (LRU). */
  max: number;
  /** "Not found" answers kept, in an LRU of their own so that misses never evict found values. */
  negativeMax: number;
  /** How long a found value is fresh. */
  ttlMs: number;
  /** How long "not found" is remembered. */
  negativeTtlMs: number;
  /**
   * How long past its TTL a found value may still be served while the store fails. Never applies
   * to a value that an invalidation removed: that one is gone, and a failed reload is an error.
   */
  maxStaleMs: number;
  /**
   * Whether invalidations are known to reach this cache now (the key-event feed is in sync).
   * While they are not, a value is fresh only for UNSYNCED_TTL_MS after its read began, since a
   * change made meanwhile might not be heard of. Absent: always in sync.
   */
  synced?: () => boolean;
  /** Reads one value; `arg` is what the caller of get() passed beside the key, if anything. */
  load: (key: string, arg: A | undefined) => Promise<V | null>;
  /** Ids a value can be invalidated by besides its own cache key (a key's id for its hashes). */
  tagsOf?: (value: V) => string[];
  onLoad?: () => void;
  /** The error raised when the store fails and nothing may be served (default StoreUnavailableError). */
  unavailable?: (cause: unknown) => Error;
  onResult?: (result: CacheResult) => void;
}

/** Share of the TTL after which a hit also triggers a background refresh. */
const REFRESH_AHEAD_AT = 0.8;
/** Freshness of a value while invalidations may be missed: what keeps revocation within a second. */
export const UNSYNCED_TTL_MS = 900;

interface Entry<V> {
  value: V | null;
  /** When the read that produced the value began: a change after that may not be in it. */
  readAt: number;
}

/** What a finished lookup read, and the newest invalidation of its tags since it began (0: none). */
interface Read<V> {
  value: V | null;
  staleSince: number;
}

interface Pending<V> {
  promise: Promise<Read<V>>;
  /** The invalidation count when the lookup began. */
  startedAt: number;
  /** Set when this very key was invalidated (or everything cleared) while it was in flight. */
  poisoned: boolean;
}

/** Tag invalidations remembered while lookups are in flight; past this, in-flight ones are poisoned instead. */
const MAX_TAG_MARKS = 10_000;

/**
 * A bounded cache in front of a Postgres lookup, for the Check's hot path (keys, service tokens,
 * vault records):
 * - Fresh hits cost no I/O. A value in use is refreshed ahead of expiry: in the last fifth of its
 *   TTL a hit is answered from the cache and re-read beside it, so a busy entry never makes a
 *   Check wait on the store.
 * - Concurrent misses of one key share one query — but no one who asks after an invalidation of
 *   that key (or of one of its tags: a key's id for its hashes) gets the answer of a query that
 *   began before it, which may have read the old row; such a query's result is not stored
 *   either. Invalidations of other keys do not affect it, so a steady stream of changes
 *   elsewhere never keeps a busy key out of the cache.
 * - When the store fails, a found value is served up to `maxStaleMs` past its TTL; an unknown
 *   key, or one an invalidation removed, raises StoreUnavailableError (503, never a wrong 401
 *   or a revoked key's old answer).
 */
export class RefreshingCache<V, A = string> {
  private readonly found: LRUCache<string, Entry<V>>;
  private readonly missing: LRUCache<string, Entry<V>>;
  private readonly inflight = new Map<string, Pending<V>>();
  /** tag → cache keys holding a value with that tag. */
  private readonly byTag = new Map<string, Set<string>>();
  /** Counts invalidations: orders each one against the lookups in flight. */
  private generation = 0;
  /** tag → the count at its newest invalidation, kept only while lookups are in flight. */
  private readonly tagMarks = new Map<string, number>();

  constructor(private readonly opts: RefreshingCacheOptions<V, A>) {
    this.found = new LRUCache<string, Entry<V>>({
      max: opts.max,
      ttl: opts.ttlMs + opts.maxStaleMs,
      ttlAutopurge: false,
      dispose: opts.tagsOf ? (entry, key) => this.unindex(entry, key) : undefined,
    });
    this.missing = new LRUCache<string, Entry<V>>({ max: opts.negativeMax, ttl: opts.negativeTtlMs, ttlAutopurge: false });
  }

  /** How long a found value is fresh right now (shorter while invalidations may be missed). */
  private freshTtl(): number {
    return this.opts.synced && !this.opts.synced() ? Math.min(this.opts.ttlMs, UNSYNCED_TTL_MS) : this.opts.ttlMs;
  }

  /** Whether get() would answer `key` from memory now, with no lookup (found or known missing). */
  answersWithoutLookup(key: string): boolean {
    const now = Date.now();
    const hit = this.found.peek(key);
    if (hit) return now - hit.readAt < this.freshTtl();
    const miss = this.missing.peek(key);
    return Boolean(miss && now - miss.readAt < this.opts.negativeTtlMs);
  }

  async get(key: string, arg?: A): Promise<V | null> {
    const now = Date.now();
    const hit = this.found.get(key);
    if (hit) {
      const ttl = this.freshTtl();
      const age = now - hit.readAt;
      if (age < ttl) {
        this.opts.onResult?.('hit');
        // Refresh-ahead: the re-read runs beside this answer; a failure leaves the entry as it was.
        if (age >= ttl * REFRESH_AHEAD_AT) this.load(key, arg).catch(() => {});
        return hit.value;
      }
      this.opts.onResult?.('stale');
      try {
        return await this.load(key, arg);
      } catch (err) {
        if (age < this.opts.ttlMs + this.opts.maxStaleMs) return hit.value;
        throw this.unavailable(err);
      }
    }
    const miss = this.missing.get(key);
    if (miss && now - miss.readAt < this.opts.negativeTtlMs) {
      this.opts.onResult?.('negative_hit');
      return null;
    }
    this.opts.onResult?.('miss');
    try {
      return await this.load(key, arg);
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  private unavailable(cause: unknown): Error {
    return this.opts.unavailable ? this.opts.unavailable(cause) : new StoreUnavailableError(cause);
  }

  /**
   * The load in flight for this key, joined, or a new one. A joiner who arrives after an
   * invalidation of what the load turns out to have read (its tags) loads again instead.
   */
  private load(key: string, arg: A | undefined): Promise<V | null> {
    const joined = this.inflight.get(key);
    if (joined && !joined.poisoned) {
      const joinedAt = this.generation;
      return joined.promise.then((read) => (read.staleSince !== 0 && read.staleSince <= joinedAt ? this.load(key, arg) : read.value));
    }
    return this.start(key, arg).then((read) => read.value);
  }

  private start(key: string, arg: A | undefined): Promise<Read<V>> {
    const pending: Pending<V> = { promise: undefined as unknown as Promise<Read<V>>, startedAt: this.generation, poisoned: false };
    const readAt = Date.now();
    this.opts.onLoad?.();
    pending.promise = this.opts
      .load(key, arg)
      .then((value) => {
        const staleSince = this.invalidatedSince(value, pending.startedAt);
        if (!pending.poisoned && staleSince === 0) this.store(key, { value, readAt });
        return { value, staleSince };
      })
      .finally(() => {
        if (this.inflight.get(key) === pending) this.inflight.delete(key);
        if (this.inflight.size === 0) this.tagMarks.clear();
      });
    this.inflight.set(key, pending);
    return pending.promise;
  }

  /** The newest invalidation of one of the value's tags after `since`, or 0. */
  private invalidatedSince(value: V | null, since: number): number {
    if (value === null || !this.opts.tagsOf || this.tagMarks.size === 0) return 0;
    let newest = 0;
    for (const tag of this.opts.tagsOf(value)) {
      const at = this.tagMarks.get(tag) ?? 0;
      if (at > since && at > newest) newest = at;
    }
    return newest;
  }

  private poisonInflight(): void {
    for (const pending of this.inflight.values()) pending.poisoned = true;
  }

  private store(key: string, entry: Entry<V>): void {
    if (entry.value === null) {
      this.found.delete(key);
      this.missing.set(key, entry);
      return;
    }
    this.missing.delete(key);
    this.found.set(key, entry);
    for (const tag of this.opts.tagsOf?.(entry.value) ?? []) {
      let keys = this.byTag.get(tag);
      if (!keys) this.byTag.set(tag, (keys = new Set()));
      keys.add(key);
    }
  }

  /** Drops one cache key. */
  invalidate(key: string): void {
    this.generation++;
    const pending = this.inflight.get(key);
    if (pending) pending.poisoned = true;
    this.found.delete(key);
    this.missing.delete(key);
  }

  /** Drops every cache key whose value carries this tag; returns how many. */
  invalidateTag(tag: string): number {
    this.generation++;
    if (this.inflight.size > 0) {
      // Which in-flight lookups read this tag is known only when they finish: remember when.
      if (this.tagMarks.size >= MAX_TAG_MARKS) {
        this.poisonInflight();
        this.tagMarks.clear();
      } else {
        this.tagMarks.set(tag, this.generation);
      }
    }
    const keys = this.byTag.get(tag);
    if (!keys) return 0;
    const n = keys.size;
    for (const k of [...keys]) {
      // A refresh of a cached entry in flight is known to read this tag: nobody joins it.
      const pending = this.inflight.get(k);
      if (pending) pending.poisoned = true;
      this.found.delete(k);
    }
    this.byTag.delete(tag);
    return n;
  }

  clear(): void {
    this.generation++;
    this.poisonInflight();
    this.found.clear();
    this.missing.clear();
    this.byTag.clear();
  }

  get size(): number {
    return this.found.size + this.missing.size;
  }

  get sizes(): { found: number; missing: number } {
    return { found: this.found.size, missing: this.missing.size };
  }

  private unindex(entry: Entry<V>, key: string): void {
    if (entry.value === null) return;
    for (const tag of this.opts.tagsOf!(entry.value)) {
      const keys = this.byTag.get(tag);
      if (!keys) continue;
      keys.delete(key);
      if (keys.size === 0) this.byTag.delete(tag);
    }
  }
}
