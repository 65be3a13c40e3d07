import pg from 'pg';
import type { Registry } from 'prom-client';
import { createMetricsRegistry, migrate, type HealthCheck, type Logger } from '@tollgate/common';
import type { AuthzConfig } from './config.js';
import { KeyHasher } from './domain/key-hash.js';
import { PlanCatalog } from './domain/plans.js';
import { KeyStore } from './stores/key-store.js';
import { KeyEventPublisher, keyEventsChannel } from './stores/key-events.js';
import { TokenStore } from './stores/token-store.js';
import { VaultStore } from './vault/vault-store.js';
import { VaultService } from './vault/vault-service.js';
import { OperatorCredentialStore } from './vault/operator-credential-store.js';
import { OperatorCredentialService } from './vault/operator-credential-service.js';
import { connectRedis, type RedisClient } from './stores/redis-client.js';
import { AUTHZ_MIGRATIONS, AUTHZ_MIGRATIONS_LOCK, AUTHZ_MIGRATIONS_TABLE } from './stores/schema.js';

/**
 * What authz-service's parts share: built once by createServiceDeps (in app.ts, the composition
 * root, or by a tool or test that needs the service's own stores), closed by closeServiceDeps.
 */
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
  operatorStore: OperatorCredentialStore;
  operatorCredentials: OperatorCredentialService;
  hasher: KeyHasher;
  /** PLANS with DEFAULT_RATE_LIMIT_*: every key's effective limits and plan scopes. */
  plans: PlanCatalog;
  keyEvents: KeyEventPublisher;
  registry: Registry;
  healthChecks: Record<string, HealthCheck>;
}

/** How long the key-event poll waits for Redis: past this its answer is too old to keep caches in sync anyway. */
const EVENTS_COMMAND_TIMEOUT_MS = 750;

export function createRedis(config: AuthzConfig, name: 'commands' | 'subscriber' | 'events'): RedisClient {
  return connectRedis({
    url: config.REDIS_URL,
    clusterNodes: config.REDIS_CLUSTER_NODES,
    // The poll has its own connection so that a busy process (whose Check commands time out
    // after REDIS_COMMAND_TIMEOUT_MS) does not also count as out of sync.
    commandTimeoutMs: name === 'events' ? EVENTS_COMMAND_TIMEOUT_MS : config.REDIS_COMMAND_TIMEOUT_MS,
    name,
    subscriber: name === 'subscriber',
  });
}

/** PLANS and the defaults they fall back to: configuration only, so it needs no connection. */
export function planCatalogOf(config: AuthzConfig): PlanCatalog {
  return new PlanCatalog(config.PLANS, { perMinute: config.DEFAULT_RATE_LIMIT_PER_MINUTE ?? null, perDay: config.DEFAULT_RATE_LIMIT_PER_DAY ?? null });
}

/** Connects to Postgres and Redis, applies migrations, and wires the shared parts. */
export async function createServiceDeps(config: AuthzConfig, logger: Logger): Promise<ServiceDeps> {
  const pool = new pg.Pool({
    connectionString: config.DATABASE_URL,
    max: config.DATABASE_POOL_SIZE,
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 30_000,
  });
  pool.on('error', (err) => logger.warn({ err: err.message }, 'postgres pool error'));
  await migrate(pool, { table: AUTHZ_MIGRATIONS_TABLE, lockKey: AUTHZ_MIGRATIONS_LOCK, migrations: AUTHZ_MIGRATIONS }, logger);

  const redis = createRedis(config, 'commands');
  redis.on('error', (err) => logger.warn({ err: err.message }, 'redis error'));

  const keyEvents = new KeyEventPublisher(redis, keyEventsChannel(config.REDIS_KEY_PREFIX), { logger });
  const vaultStore = new VaultStore(pool);
  const vault = new VaultService(config.VAULT_MASTER_KEYS, vaultStore, keyEvents, logger);
  const operatorStore = new OperatorCredentialStore(pool);
  return {
    config,
    logger,
    pool,
    redis,
    keyStore: new KeyStore(pool),
    tokenStore: new TokenStore(pool),
    vaultStore,
    vault,
    operatorStore,
    operatorCredentials: new OperatorCredentialService(vault.envelope, operatorStore, keyEvents, logger),
    hasher: new KeyHasher(config.KEY_HASH_SECRETS),
    plans: planCatalogOf(config),
    keyEvents,
    registry: createMetricsRegistry('authz-service'),
    healthChecks: {
      postgres: () => pool.query('select 1'),
      redis: () => redis.ping(),
    },
  };
}

export async function closeServiceDeps(deps: ServiceDeps): Promise<void> {
  deps.keyEvents.close();
  await deps.pool.end().catch(() => {});
  deps.redis.disconnect();
}
