import { Counter, type Registry } from 'prom-client';
import type { KeyEvent, KeyEventHandlers } from '../stores/key-events.js';
import type { ProviderKeyRecord } from '../vault/vault-store.js';
import type { KeyResolver } from './key-resolver.js';
import type { RefreshingCache } from './refreshing-cache.js';
import type { TokenChecker } from './token-checker.js';
import { vaultCacheKey } from './provider-injector.js';
import type { OperatorCredentialSet } from './operator-credentials.js';

/** The Check's caches, each dropped from by the events that concern it. */
export interface InvalidatedCaches {
  keys: Pick<KeyResolver, 'invalidateKey' | 'clear'>;
  tokens: Pick<TokenChecker, 'invalidate' | 'clear'>;
  vault: Pick<RefreshingCache<ProviderKeyRecord>, 'invalidate' | 'clear'>;
  operator: Pick<RefreshingCache<OperatorCredentialSet>, 'invalidate' | 'clear'>;
}

/**
 * Keeps this replica's caches in step with changes made on any replica (stores/key-events.ts):
 * each event drops what it names from the cache that holds it; a resync, or an event this
 * version does not route, clears them all.
 */
export class CacheInvalidation implements KeyEventHandlers {
  private readonly invalidations: Counter<'type'>;
  private caches: InvalidatedCaches | null = null;

  constructor(registry: Registry) {
    this.invalidations = new Counter({
      name: 'tollgate_authz_key_invalidations_total',
      help: 'Cache invalidations received',
      labelNames: ['type'],
      registers: [registry],
    });
  }

  /**
   * The caches are built after the feed (they ask it whether they are in sync), so they join
   * here, before the feed starts. Until then there is nothing cached to drop.
   */
  attach(caches: InvalidatedCaches): void {
    this.caches = caches;
  }

  onEvent(e: KeyEvent): void {
    const c = this.caches;
    if (e.type === 'key_changed') c?.keys.invalidateKey(e.keyId);
    else if (e.type === 'token_changed') c?.tokens.invalidate(e.jti);
    else if (e.type === 'provider_key_changed') c?.vault.invalidate(vaultCacheKey(e.userId, e.provider));
    else if (e.type === 'operator_credential_changed') c?.operator.invalidate(e.provider);
    else this.clearAll();
    this.invalidations.inc({ type: e.type });
  }

  onResync(): void {
    this.clearAll();
    this.invalidations.inc({ type: 'resync' });
  }

  private clearAll(): void {
    this.caches?.keys.clear();
    this.caches?.tokens.clear();
    this.caches?.vault.clear();
    this.caches?.operator.clear();
  }
}
