import type pg from 'pg';
import type { RedisClient } from './stores/redis-client.js';
import type { Registry } from 'prom-client';
import type { HealthCheck, Logger } from '@tollgate/common';
import type { AuthzConfig } from './config.js';
import type { KeyHasher } from './domain/key-hash.js';
import type { KeyStore } from './stores/key-store.js';
import type { KeyEventPublisher } from './stores/key-events.js';
import type { TokenStore } from './stores/token-store.js';
import type { VaultStore } from './vault/vault-store.js';
import type { VaultService } from './vault/vault-service.js';

/** What authz-service's parts share, built once in app.ts (the composition root). */
export interface ServiceDeps {
  config: AuthzConfig;
  logger: Logger;
  pool: pg.Pool;
  /** Commands (rate limits, publishes). Subscriptions use a connection of their own. */
  redis: RedisClient;
  keyStore: KeyStore;
  tokenStore: TokenStore;
  vaultStore: VaultStore;
  vault: VaultService;
  hasher: KeyHasher;
  keyEvents: KeyEventPublisher;
  registry: Registry;
  healthChecks: Record<string, HealthCheck>;
}
