import type { Logger } from '@tollgate/common';
import { AUTHORIZATION_SERVICE } from '@tollgate/proto';
import type { FastifyInstance } from 'fastify';
import type { AuthzConfig } from './config.js';
import { closeServiceDeps, createServiceDeps, type ServiceDeps } from './deps.js';
import { createResolverMetrics, KeyResolver, registerKeyCacheGauge } from './check/key-resolver.js';
import { registerCredentialExpiryGauge } from './stores/expiry-gauge.js';
import { RedisWriteCoalescer } from './stores/redis-write-coalescer.js';
import { waitForRedis } from './stores/redis-client.js';
import { IdempotencySweeper } from './stores/idempotency-sweeper.js';
import { createRedisFailuresCounter, RateLimiter } from './check/rate-limiter.js';
import { UsageBatcher } from './check/usage-batcher.js';
import { Checker } from './check/checker.js';
import { TokenChecker } from './check/token-checker.js';
import { RefusalLimiter } from './check/refusal-limiter.js';
import { createVaultCache, ProviderInjector } from './check/provider-injector.js';
import { createOperatorCredentialCache, createOperatorCredentialUsesCounter, OperatorCredentials } from './check/operator-credentials.js';
import { createOperatorHealthMetrics, OperatorCredentialHealth } from './check/operator-credential-health.js';
import { CacheInvalidation } from './check/cache-invalidation.js';
import { createKeyEventFeed } from './check/key-event-feed.js';
import { Envelope } from './vault/envelope.js';
import { authorizationHandlers, CHECK_METHOD_PATH, checkMethod, createCheckMetrics } from './grpc/check-server.js';
import { H2GrpcServer, type UnaryMethod } from './grpc/h2-grpc-server.js';
import { GrpcHealth, HEALTH_CHECK_PATH } from './grpc/h2-grpc-health.js';
import type { KeyEventFeed } from './stores/key-events.js';
import { permissionSets } from './domain/scopes.js';
import { buildManagementApi } from './http/api.js';
import { WebhookDispatcher } from './webhooks/dispatcher.js';
import { WebhookEndpointStore } from './webhooks/endpoint-store.js';
import { WebhookAnnouncer } from './webhooks/announcer.js';

export interface AuthzService {
  deps: ServiceDeps;
  resolver: KeyResolver;
  feed: KeyEventFeed;
  checker: Checker;
  usage: UsageBatcher;
  /** Outbound webhooks: tests drive a poll or scan with tick()/scan() instead of waiting. */
  webhooks: WebhookDispatcher;
  announcer: WebhookAnnouncer;
  grpcPort: number;
  httpPort: number;
  http: FastifyInstance;
  stop(): Promise<void>;
}

/** Composition root: the Check gRPC server and the management HTTP API over shared stores. */
export async function startAuthzService(config: AuthzConfig, logger: Logger): Promise<AuthzService> {
  const deps = await createServiceDeps(config, logger);
  const { registry } = deps;
  const resolverMetrics = createResolverMetrics(registry);

  // The feed comes first so the caches can ask it whether invalidations reach them; it starts
  // (subscribes, first poll) once they exist.
  const invalidation = new CacheInvalidation(registry);
  const events = createKeyEventFeed(config, logger, invalidation);
  const synced = () => events.feed.synced();
  const cacheSettings = { ttlMs: config.KEY_CACHE_TTL_MS, negativeTtlMs: config.NEGATIVE_CACHE_TTL_MS, maxStaleMs: config.KEY_CACHE_MAX_STALE_MS, synced };

  const resolver = new KeyResolver(
    deps.keyStore,
    { ...cacheSettings, maxEntries: config.KEY_CACHE_MAX_ENTRIES, negativeMaxEntries: config.NEGATIVE_CACHE_MAX_ENTRIES },
    resolverMetrics,
  );
  registerKeyCacheGauge(registry, resolver);
  registerCredentialExpiryGauge(registry, deps.pool);

  // Serve no Check before Redis is connected (or given up on): otherwise the first requests
  // after a start would all take the failure policy.
  await waitForRedis(deps.redis, 5000).catch((err: Error) =>
    logger.warn({ err: err.message }, 'redis not reachable at start; the failure policy applies until it is'),
  );
  const limiter = new RateLimiter(deps.redis, config.REDIS_KEY_PREFIX, {
    writes: config.REDIS_WRITE_COALESCING === 'on' ? new RedisWriteCoalescer(deps.redis) : undefined,
  });
  await limiter.load().catch((err: Error) => logger.warn({ err: err.message }, 'could not preload the rate-limit script; will load on first use'));
  const usage = new UsageBatcher((b) => deps.keyStore.recordUsage(b), logger, config.USAGE_FLUSH_INTERVAL_MS);
  usage.start();
  const tokenUsage = new UsageBatcher((b) => deps.tokenStore.recordUse(b), logger, config.USAGE_FLUSH_INTERVAL_MS);
  tokenUsage.start();
  const tokens = new TokenChecker(
    {
      secrets: config.GATEWAY_JWT_SECRET,
      issuer: config.GATEWAY_JWT_ISSUER,
      clockToleranceS: config.GATEWAY_JWT_CLOCK_TOLERANCE_S,
      rules: config.SERVICE_TOKEN_ROUTES,
      cacheTtlMs: config.KEY_CACHE_TTL_MS,
      negativeTtlMs: config.NEGATIVE_CACHE_TTL_MS,
      maxStaleMs: config.KEY_CACHE_MAX_STALE_MS,
      synced,
    },
    deps.tokenStore,
    tokenUsage,
    resolverMetrics.lookups,
  );

  const vaultCache = createVaultCache(deps.vaultStore, {
    ...cacheSettings,
    max: config.KEY_CACHE_MAX_ENTRIES,
    negativeMax: config.NEGATIVE_CACHE_MAX_ENTRIES,
    onLoad: () => resolverMetrics.lookups.inc(),
  });
  const envelope = config.VAULT_MASTER_KEYS?.length ? new Envelope(config.VAULT_MASTER_KEYS) : null;
  const operatorCache = createOperatorCredentialCache(deps.operatorStore, {
    ...cacheSettings,
    max: 1000,
    negativeMax: 1000,
    onLoad: () => resolverMetrics.lookups.inc(),
  });
  if (config.ENV_OPERATOR_CREDENTIALS.length > 0) {
    logger.warn(
      { providers: config.ENV_OPERATOR_CREDENTIALS.map((c) => c.provider) },
      'PROVIDER_CREDENTIALS_FROM_ENV: operator credentials come from PROVIDER_KEY_* variables (development mode)',
    );
  }
  const operatorHealth = new OperatorCredentialHealth(
    deps.pool,
    deps.operatorStore,
    { rejectStatuses: config.OPERATOR_CREDENTIAL_REJECT_STATUSES, intervalMs: config.OPERATOR_CREDENTIAL_HEALTH_INTERVAL_MS },
    logger,
    createOperatorHealthMetrics(registry),
  );
  const operatorCredentials = new OperatorCredentials(
    envelope,
    operatorCache,
    config.ENV_OPERATOR_CREDENTIALS,
    logger,
    createOperatorCredentialUsesCounter(registry),
    operatorHealth,
  );
  const providers = new ProviderInjector(
    { routes: config.PROVIDER_ROUTES ?? [], defaultProvider: config.DEFAULT_PROVIDER, byok: config.PROVIDER_BYOK },
    envelope,
    vaultCache,
    logger,
    operatorCredentials,
  );

  invalidation.attach({ keys: resolver, tokens, vault: vaultCache, operator: operatorCache });
  await events.feed.start();

  const checker = new Checker({
    settings: {
      acceptedPrefixes: config.ACCEPTED_KEY_PREFIXES ?? [config.KEY_PREFIX],
      routeScopes: config.ROUTE_SCOPES ?? [],
      routeCosts: config.ROUTE_COSTS ?? [],
      serviceTokenRoutes: config.SERVICE_TOKEN_ROUTES,
      permissionSets: permissionSets(config.PERMISSION_SETS),
      failureMode: config.RATE_LIMIT_FAILURE_MODE,
      plans: deps.plans,
    },
    hasher: deps.hasher,
    resolver,
    limiter,
    usage,
    logger,
    redisFailures: createRedisFailuresCounter(registry),
    tokens,
    providers,
  });

  const refusals =
    config.UNAUTHENTICATED_REFUSALS_PER_MINUTE_PER_ADDRESS > 0 ? new RefusalLimiter(config.UNAUTHENTICATED_REFUSALS_PER_MINUTE_PER_ADDRESS) : undefined;
  const health = new GrpcHealth([AUTHORIZATION_SERVICE]);
  const handlers = authorizationHandlers(checker, createCheckMetrics(registry), logger, refusals);
  const methods = new Map<string, UnaryMethod<unknown, unknown>>([
    [CHECK_METHOD_PATH, checkMethod(handlers)],
    [HEALTH_CHECK_PATH, health.method],
  ]);
  const grpcServer = new H2GrpcServer(methods, { maxReceiveMessageLength: 1024 * 1024, keepaliveIntervalMs: 60_000 });
  const grpcPort = await grpcServer.listen(config.AUTHZ_HOST, config.AUTHZ_GRPC_PORT);

  const http = buildManagementApi(deps);
  const idempotencySweeper = new IdempotencySweeper(deps.pool, logger, config.IDEMPOTENCY_SWEEP_INTERVAL_MS);
  idempotencySweeper.start();
  operatorHealth.start();
  const webhooks = new WebhookDispatcher({
    pool: deps.pool,
    endpoints: new WebhookEndpointStore(deps.pool),
    envelope: () => deps.vault.envelope,
    logger,
    registry,
    settings: {
      maxAttempts: config.WEBHOOK_MAX_ATTEMPTS,
      retryBaseMs: config.WEBHOOK_RETRY_BASE_MS,
      retryMaxMs: config.WEBHOOK_RETRY_MAX_MS,
      timeoutMs: config.WEBHOOK_TIMEOUT_MS,
      pollIntervalMs: config.WEBHOOK_POLL_INTERVAL_MS,
      allowPrivate: config.WEBHOOK_ALLOW_PRIVATE_TARGETS,
    },
  });
  webhooks.start();
  const announcer = new WebhookAnnouncer({
    pool: deps.pool,
    quotaUsed: (id, now) => limiter.quotaUsed(id, now),
    plans: deps.plans,
    logger,
    intervalMs: config.WEBHOOK_SCAN_INTERVAL_MS,
  });
  announcer.start();
  await http.listen({ host: config.AUTHZ_HOST, port: config.AUTHZ_HTTP_PORT });
  const address = http.server.address();
  const httpPort = typeof address === 'object' && address ? address.port : config.AUTHZ_HTTP_PORT;
  logger.info({ grpcPort, httpPort, host: config.AUTHZ_HOST }, 'authz-service listening');

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      health.set([AUTHORIZATION_SERVICE], 'NOT_SERVING');
      await http.close();
      await idempotencySweeper.stop();
      await operatorHealth.stop();
      await webhooks.stop();
      await announcer.stop();
      await grpcServer.shutdown(5000);
      await usage.stop();
      await tokenUsage.stop();
      events.close();
      await closeServiceDeps(deps);
    })());

  return { deps, resolver, feed: events.feed, checker, usage, webhooks, announcer, grpcPort, httpPort, http, stop };
}
