import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Counter, Registry } from 'prom-client';
import { KeyCache } from '../src/check/key-cache.js';
import { KeyResolver } from '../src/check/key-resolver.js';
import { RefreshingCache } from '../src/check/refreshing-cache.js';
import type { HashMatch, KeyStore } from '../src/stores/key-store.js';
import type { ApiKey } from '../src/domain/api-key.js';

// The resolver's cache policy, with the clock under the test's control. Postgres itself is
// exercised by the integration tests; here the store is a function that counts its calls.
const TTL = 30_000;

function setup() {
  const registry = new Registry();
  const metrics = {
    cache: new Counter({ name: 'cache', help: 'h', labelNames: ['result'], registers: [registry] }),
    lookups: new Counter({ name: 'lookups', help: 'h', registers: [registry] }),
    postgresErrors: new Counter({ name: 'errors', help: 'h', registers: [registry] }),
  };
  let version = 0;
  let release: (() => void) | undefined;
  const store = {
    calls: 0,
    down: false,
    slow: false,
    async findByHash(): Promise<HashMatch | null> {
      store.calls++;
      if (store.slow) await new Promise<void>((r) => (release = r));
      if (store.down) throw new Error('connection refused');
      version++;
      return { key: { id: 'key_1', name: `v${version}` } as ApiKey, matched: 'current' };
    },
  };
  const resolver = new KeyResolver(store as unknown as KeyStore, new KeyCache({ maxEntries: 10, ttlMs: TTL, negativeTtlMs: 5_000 }), metrics);
  const results = async () => Object.fromEntries((await metrics.cache.get()).values.map((v) => [v.labels.result, v.value]));
  return { store, resolver, results, release: () => release?.() };
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
      ttlMs: TTL,
      negativeTtlMs: 5_000,
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
