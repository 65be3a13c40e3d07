import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { CacheInvalidation } from '../src/check/cache-invalidation.js';
import { vaultCacheKey } from '../src/check/provider-injector.js';

// Which cache each key event reaches; the feed that delivers them is in key-events.int.test.ts.
function setup() {
  const calls: string[] = [];
  const registry = new Registry();
  const invalidation = new CacheInvalidation(registry);
  invalidation.attach({
    keys: {
      invalidateKey: (id) => {
        calls.push(`key:${id}`);
        return 1;
      },
      clear: () => void calls.push('keys:clear'),
    },
    tokens: { invalidate: (jti) => void calls.push(`token:${jti}`), clear: () => void calls.push('tokens:clear') },
    vault: { invalidate: (k) => void calls.push(`vault:${k}`), clear: () => void calls.push('vault:clear') },
    operator: { invalidate: (p) => void calls.push(`operator:${p}`), clear: () => void calls.push('operator:clear') },
  });
  const counted = async () => (await registry.getSingleMetric('tollgate_authz_key_invalidations_total')!.get()).values.map((v) => [v.labels.type, v.value]);
  return { calls, invalidation, counted };
}

describe('cache invalidation', () => {
  it('drops a changed key, token or vault record from its own cache only', async () => {
    const { calls, invalidation, counted } = setup();
    invalidation.onEvent({ type: 'key_changed', keyId: 'k1' });
    invalidation.onEvent({ type: 'token_changed', jti: 't1' });
    invalidation.onEvent({ type: 'provider_key_changed', userId: 'u1', provider: 'openai' });
    invalidation.onEvent({ type: 'operator_credential_changed', provider: 'openai' });
    expect(calls).toEqual(['key:k1', 'token:t1', `vault:${vaultCacheKey('u1', 'openai')}`, 'operator:openai']);
    expect(await counted()).toEqual([
      ['key_changed', 1],
      ['token_changed', 1],
      ['provider_key_changed', 1],
      ['operator_credential_changed', 1],
    ]);
  });

  it('clears every cache on a flush and on a resync', async () => {
    const { calls, invalidation, counted } = setup();
    invalidation.onEvent({ type: 'flush' });
    invalidation.onResync();
    expect(calls).toEqual(['keys:clear', 'tokens:clear', 'vault:clear', 'operator:clear', 'keys:clear', 'tokens:clear', 'vault:clear', 'operator:clear']);
    expect(await counted()).toEqual([
      ['flush', 1],
      ['resync', 1],
    ]);
  });

  it('takes events that arrive before the caches exist, with nothing to drop', async () => {
    const invalidation = new CacheInvalidation(new Registry());
    expect(() => invalidation.onEvent({ type: 'key_changed', keyId: 'k1' })).not.toThrow();
    expect(() => invalidation.onResync()).not.toThrow();
  });
});
