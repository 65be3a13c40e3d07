import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Counter, Registry } from 'prom-client';
import { KeyResolver } from '../src/check/key-resolver.js';
import { RefreshingCache, UNSYNCED_TTL_MS } from '../src/check/refreshing-cache.js';
import { KeyStoreUnavailableError } from '../src/check/key-resolver.js';
import type { HashMatch, KeyStore } from '../src/stores/key-store.js';
import type { ApiKey } from '../src/domain/api-key.js';

// The resolver's cache policy, with the clock under the test's control. Postgres itself is
// exercised by the integration tests; here the store is a function that counts its calls.
const TTL = 30_000;

function setup(opts: { maxStaleMs?: number; synced?: () => boolean; maxEntries?: number } = {}) {
  const registry = new Registry();
  const metrics = {
    cache: new Counter({ name: 'cache', help: 'h', labelNames: ['result'], registers: [registry] }),
    lookups: new Counter({ name: 'lookups', help: 'h', registers: [registry] }),
    postgresErrors: new Counter({ name: 'errors', help: 'h', registers: [registry] }),
  };
  let version = 0;
  let unknown = false;
  let release: (() => void) | undefined;
  const store = {
    calls: 0,
    down: false,
    slow: false,
    async findByHash(): Promise<HashMatch | null> {
      store.calls++;
      if (store.slow) await new Promise<void>((r) => (release = r));
      if (store.down) throw new Error('connection refused');
      if (unknown) return null;
      version++;
      return { key: { id: 'key_1', name: `v${version}` } as ApiKey, matched: 'current' };
    },
  };
  const resolver = new KeyResolver(
    store as unknown as KeyStore,
    {
      maxEntries: opts.maxEntries ?? 10,
      negativeMaxEntries: 10,
      ttlMs: TTL,
      negativeTtlMs: 5_000,
      maxStaleMs: opts.maxStaleMs ?? 300_000,
      synced: opts.synced,
    },
    metrics,
  );
  const results = async () => Object.fromEntries((await metrics.cache.get()).values.map((v) => [v.labels.result, v.value]));
  return { store, resolver, results, release: () => release?.(), unknownKeys: (on: boolean) => (unknown = on) };
}

const settle = () => new Promise((r) => setImmediate(r));

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('key cache refresh-ahead', () => {
  it('a key in steady use is re-read in the background and never makes a Check wait on Postgres', async () => {
    const { store, resolver, results } = setup();
    expect((await resolver.resolve(['h']))?.key.name).toBe('v1'); // the first sight is a miss
    // One Check a second for five TTLs.
    for (let s = 1; s <= 150; s++) {
      vi.advanceTimersByTime(1_000);
      const match = await resolver.resolve(['h']);
      expect(match?.key.id).toBe('key_1');
      await settle();
    }
    const r = await results();
    expect(r.miss).toBe(1);
    expect(r.stale).toBeUndefined(); // never served past the TTL, never waited
    expect(r.hit).toBe(150);
    // One re-read per TTL or so, in the background: 24 s into each 30 s.
    expect(store.calls).toBeGreaterThanOrEqual(1 + 5);
    expect(store.calls).toBeLessThanOrEqual(1 + 7);
  });

  it('answers from the cache while the background re-read is still running, and picks up its result', async () => {
    const { store, resolver, release } = setup();
    await resolver.resolve(['h']);
    vi.advanceTimersByTime(TTL * 0.9);
    store.slow = true;
    expect((await resolver.resolve(['h']))?.key.name).toBe('v1'); // answered without waiting
    expect((await resolver.resolve(['h']))?.key.name).toBe('v1'); // one re-read in flight, not two
    expect(store.calls).toBe(2);
    release();
    await settle();
    await settle();
    vi.advanceTimersByTime(TTL * 0.5); // past the first read's TTL, inside the re-read's
    store.slow = false;
    expect((await resolver.resolve(['h']))?.key.name).toBe('v2');
    expect(store.calls).toBe(2);
  });

  it('a failed re-read changes nothing: the entry is served until its TTL, then Postgres is asked again', async () => {
    const { store, resolver, results } = setup();
    await resolver.resolve(['h']);
    store.down = true;
    vi.advanceTimersByTime(TTL * 0.9);
    expect((await resolver.resolve(['h']))?.key.name).toBe('v1');
    await settle();
    store.down = false;
    vi.advanceTimersByTime(TTL * 0.2); // now past the TTL
    expect((await resolver.resolve(['h']))?.key.name).toBe('v2');
    expect((await results()).stale).toBe(1);
  });

  it('a key unused for longer than its TTL is read again before it is served', async () => {
    const { store, resolver, results } = setup();
    await resolver.resolve(['h']);
    vi.advanceTimersByTime(TTL + 1);
    expect((await resolver.resolve(['h']))?.key.name).toBe('v2');
    expect(store.calls).toBe(2);
    expect((await results()).stale).toBe(1);
  });
});

describe('token and vault cache refresh-ahead', () => {
  it('re-reads an entry in use before it expires, without making the caller wait', async () => {
    let loads = 0;
    let release: (() => void) | undefined;
    let slow = false;
    const cache = new RefreshingCache<string>({
      max: 10,
      negativeMax: 10,
      ttlMs: TTL,
      negativeTtlMs: 5_000,
      maxStaleMs: 300_000,
      load: async () => {
        loads++;
        if (slow) await new Promise<void>((r) => (release = r));
        return `v${loads}`;
      },
    });
    expect(await cache.get('t')).toBe('v1');
    vi.advanceTimersByTime(TTL * 0.9);
    slow = true;
    expect(await cache.get('t')).toBe('v1'); // answered while the re-read waits on the store
    expect(loads).toBe(2);
    release!();
    await settle();
    vi.advanceTimersByTime(TTL * 0.5);
    expect(await cache.get('t')).toBe('v2');
    expect(loads).toBe(2);
  });
});

describe('key cache and revocation', () => {
  it('a Check after an invalidation does not get the answer of a lookup that began before it, and that lookup is not stored', async () => {
    const registry = new Registry();
    const metrics = {
      cache: new Counter({ name: 'c', help: 'h', labelNames: ['result'], registers: [registry] }),
      lookups: new Counter({ name: 'l', help: 'h', registers: [registry] }),
      postgresErrors: new Counter({ name: 'e', help: 'h', registers: [registry] }),
    };
    const reads: ((revoked: boolean) => void)[] = [];
    const store = {
      findByHash: () =>
        new Promise<HashMatch>((resolve) =>
          reads.push((revoked) => resolve({ key: { id: 'key_1', revokedAt: revoked ? new Date() : null } as ApiKey, matched: 'current' })),
        ),
    };
    const resolver = new KeyResolver(
      store as unknown as KeyStore,
      { maxEntries: 10, negativeMaxEntries: 10, ttlMs: TTL, negativeTtlMs: 5_000, maxStaleMs: 0 },
      metrics,
    );
    const before = resolver.resolve(['h']); // its read sees the row as it was before the revocation
    resolver.invalidateKey('key_1'); // the revocation's event arrives while that read is in flight
    const after = resolver.resolve(['h']);
    // Which key the read in flight belongs to is known only when it returns: then the Check that
    // came after the revocation reads again instead of taking that answer.
    reads[0]!(false);
    expect((await before)?.key.revokedAt).toBeNull(); // its own caller began before the revocation
    await vi.waitFor(() => expect(reads).toHaveLength(2));
    reads[1]!(true);
    expect((await after)?.key.revokedAt).not.toBeNull();
    // What the old read saw was not stored: later Checks get the revoked row, from the cache.
    expect((await resolver.resolve(['h']))?.key.revokedAt).not.toBeNull();
    expect(reads).toHaveLength(2);
  });

  it('a change to another key while a lookup is in flight does not keep this key out of the cache', async () => {
    const { store, resolver, release } = setup();
    store.slow = true;
    const first = resolver.resolve(['h']);
    resolver.invalidateKey('key_other'); // some other key's change, heard meanwhile
    store.slow = false;
    await vi.waitFor(() => expect(store.calls).toBe(1));
    await settle();
    release();
    expect((await first)?.key.id).toBe('key_1');
    const calls = store.calls;
    expect((await resolver.resolve(['h']))?.key.id).toBe('key_1');
    expect(store.calls).toBe(calls); // stored: answered from the cache
  });

  it('a flood of distinct unknown hashes does not evict a known key', async () => {
    const { store, resolver, unknownKeys } = setup({ maxEntries: 10 });
    await resolver.resolve(['known']);
    unknownKeys(true);
    for (let i = 0; i < 1_000; i++) expect(await resolver.resolve([`unknown_${i}`])).toBeNull();
    unknownKeys(false);
    const calls = store.calls;
    expect((await resolver.resolve(['known']))?.key.id).toBe('key_1');
    expect(store.calls).toBe(calls); // answered from the cache
  });

  it('serves a stale key on a store failure only within maxStaleMs past the TTL', async () => {
    const { store, resolver } = setup({ maxStaleMs: 60_000 });
    await resolver.resolve(['h']);
    store.down = true;
    vi.advanceTimersByTime(TTL + 59_000);
    expect((await resolver.resolve(['h']))?.key.id).toBe('key_1');
    vi.advanceTimersByTime(2_000);
    await expect(resolver.resolve(['h'])).rejects.toBeInstanceOf(KeyStoreUnavailableError);
  });

  it('never serves an invalidated key stale: a failed reload is an error, not the old answer', async () => {
    const { store, resolver } = setup();
    await resolver.resolve(['h']);
    resolver.invalidateKey('key_1');
    store.down = true;
    await expect(resolver.resolve(['h'])).rejects.toBeInstanceOf(KeyStoreUnavailableError);
  });

  it('while invalidations may be missed, trusts an entry for under a second only', async () => {
    let synced = true;
    const { store, resolver } = setup({ synced: () => synced });
    await resolver.resolve(['h']);
    vi.advanceTimersByTime(UNSYNCED_TTL_MS + 1);
    await resolver.resolve(['h']);
    expect(store.calls).toBe(1); // in sync: the TTL applies
    synced = false;
    await resolver.resolve(['h']);
    expect(store.calls).toBe(2); // out of sync: re-read before it is served
    expect(UNSYNCED_TTL_MS).toBeLessThan(1_000);
  });
});
