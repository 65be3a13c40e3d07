import { describe, expect, it } from 'vitest';
import { loadAuthzConfig } from '../src/config.js';

// The cache and revocation settings are validated at start, each error naming its variable.
const base = {
  DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/db',
  REDIS_URL: 'redis://127.0.0.1:6379',
  KEY_HASH_SECRETS: 'x'.repeat(32),
  ADMIN_TOKEN: 'a'.repeat(16),
};

describe('cache and revocation settings', () => {
  it('defaults: a five-minute serve-stale bound, a 250 ms poll, 100,000 unknown keys', () => {
    const c = loadAuthzConfig(base);
    expect(c.KEY_CACHE_MAX_STALE_MS).toBe(300_000);
    expect(c.KEY_EVENTS_POLL_MS).toBe(250);
    expect(c.NEGATIVE_CACHE_MAX_ENTRIES).toBe(100_000);
  });

  it.each([
    ['KEY_CACHE_MAX_STALE_MS', 'soon'],
    ['KEY_CACHE_MAX_STALE_MS', '86400000'],
    ['KEY_EVENTS_POLL_MS', '1000'],
    ['KEY_EVENTS_POLL_MS', '0'],
    ['NEGATIVE_CACHE_MAX_ENTRIES', '10'],
  ])('refuses %s=%s, naming it', (name, value) => {
    expect(() => loadAuthzConfig({ ...base, [name]: value })).toThrow(name);
  });
});
