import Fastify, { type FastifyInstance } from 'fastify';
import pg from 'pg';
import type { Logger } from '@tollgate/common';
import type { Registry } from 'prom-client';
import {
  addGrpcHealth,
  createMetricsRegistry,
  registerOpsRoutes,
  setGrpcServing,
  bindGrpcServer,
  createGrpcServer,
  shutdownGrpcServer,
} from '@tollgate/common';
import { ACCESS_LOG_SERVICE, loadEnvoyProtos } from '@tollgate/proto';
import type { BillingConfig } from './config.js';
import type { MeterRouting } from './domain/meter-routing.js';
import { AccessLogTailer } from './ingest/access-log-tailer.js';
import { createAlsHandlers } from './ingest/als-service.js';
import { createBillingMetrics, type BillingMetrics } from './metrics.js';
import { migrateBilling } from '@tollgate/usage-model';
import { UsageRetention } from './stores/usage-retention.js';
import { UsageWriter } from './stores/usage-writer.js';
import { createStripeMeterClient, type MeterClient } from './stripe/meter-client.js';
import { StripeBilling } from './stripe/stripe-billing.js';

export interface BillingSidecar {
  pool: pg.Pool;
  writer: UsageWriter;
  tailer: AccessLogTailer | undefined;
  stripe: StripeBilling | undefined;
  metrics: BillingMetrics;
  registry: Registry;
  http: FastifyInstance;
  grpcPort: number;
  httpPort: number;
  /** Stops taking entries, writes what is buffered, saves the file offset, closes stores. */
  stop(): Promise<void>;
}

export interface BillingSidecarDeps {
  /** Replaces the Stripe SDK client (tests); only used when STRIPE_API_KEY is set. */
  meterClient?: MeterClient;
}

// A week of day partitions ready ahead, checked hourly: a missed run or two never leaves a day
// without its partition.
const USAGE_PARTITIONS_AHEAD_DAYS = 7;
const USAGE_PARTITION_INTERVAL_MS = 3_600_000;

/** Builds and starts everything the sidecar runs: stores, ingest, Stripe, HTTP ops, gRPC. */
export async function startBillingSidecar(config: BillingConfig, logger: Logger, deps: BillingSidecarDeps = {}): Promise<BillingSidecar> {
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: config.DATABASE_POOL_SIZE });
  pool.on('error', (err) => logger.error({ err }, 'idle Postgres connection failed'));
  await migrateBilling(pool, logger);

  const registry = createMetricsRegistry('billing-sidecar');
  const metrics = createBillingMetrics(registry);
  const meterRouting: MeterRouting | undefined = config.STRIPE_API_KEY
    ? { defaultEvent: config.STRIPE_METER_EVENT_NAME, managedEvents: config.STRIPE_MANAGED_METER_EVENTS, billed: config.STRIPE_BILLED_USAGE }
    : undefined;
  const writer = new UsageWriter(
    pool,
    {
      batchSize: config.BILLING_BATCH_SIZE,
      flushIntervalMs: config.BILLING_FLUSH_INTERVAL_MS,
      maxBuffered: config.BILLING_MAX_BUFFERED,
      ...(meterRouting && { meterRouting }),
      retentionDays: config.USAGE_RETENTION_DAYS,
    },
    metrics,
    logger,
  );
  const retention = new UsageRetention(
    pool,
    { retentionDays: config.USAGE_RETENTION_DAYS, aheadDays: USAGE_PARTITIONS_AHEAD_DAYS, intervalMs: USAGE_PARTITION_INTERVAL_MS },
    metrics,
    logger,
  );
  await retention.start();
  logger.info({ nonBillable: config.BILLING_NON_BILLABLE_STATUSES.text }, 'billable rule: every status except these');

  // The file first: whatever Envoy logged while the sidecar was down is backfilled at start.
  let tailer: AccessLogTailer | undefined;
  if (config.ENVOY_ACCESS_LOG_PATH) {
    tailer = new AccessLogTailer(
      pool,
      writer,
      config.BILLING_NON_BILLABLE_STATUSES,
      {
        path: config.ENVOY_ACCESS_LOG_PATH,
        pollIntervalMs: config.ACCESS_LOG_POLL_INTERVAL_MS,
        hostId: config.ACCESS_LOG_HOST_ID,
        rotateBytes: config.ACCESS_LOG_ROTATE_BYTES,
        envoyAdminUrl: config.ENVOY_ADMIN_URL,
      },
      metrics,
      logger,
    );
  } else {
    logger.warn('ENVOY_ACCESS_LOG_PATH is not set: only the gRPC stream is read, so usage logged while the sidecar is down is lost');
  }

  let stripe: StripeBilling | undefined;
  if (config.STRIPE_API_KEY) {
    const client =
      deps.meterClient ?? createStripeMeterClient({ apiKey: config.STRIPE_API_KEY, apiBase: config.STRIPE_API_BASE, timeoutMs: config.STRIPE_TIMEOUT_MS });
    stripe = new StripeBilling(
      pool,
      client,
      {
        eventName: config.STRIPE_METER_EVENT_NAME,
        intervalSeconds: config.STRIPE_AGGREGATION_INTERVAL_SECONDS,
        maxCallsPerSecond: config.STRIPE_MAX_CALLS_PER_SECOND,
        maxConcurrency: config.STRIPE_MAX_CONCURRENCY,
        timeoutMs: config.STRIPE_TIMEOUT_MS,
        retryBaseMs: config.STRIPE_RETRY_BASE_MS,
        retryMaxMs: config.STRIPE_RETRY_MAX_MS,
        drainIntervalMs: config.STRIPE_DRAIN_INTERVAL_MS,
      },
      metrics,
      logger,
    );
    logger.info(
      {
        eventName: config.STRIPE_METER_EVENT_NAME,
        managedEvents: Object.fromEntries(config.STRIPE_MANAGED_METER_EVENTS),
        billedUsage: config.STRIPE_BILLED_USAGE,
        intervalSeconds: config.STRIPE_AGGREGATION_INTERVAL_SECONDS,
        apiBase: config.STRIPE_API_BASE ?? 'stripe',
      },
      'Stripe metering on',
    );
  } else {
    logger.info('STRIPE_API_KEY is not set: Stripe metering is off; usage is still recorded in Postgres');
  }

  // Only ops routes live here; their requests are not worth a log line each.
  const http = Fastify({ logger: false });
  registerOpsRoutes(http, {
    service: 'billing-sidecar',
    registry,
    checks: { postgres: () => pool.query('select 1') },
  });
  await http.listen({ host: config.BILLING_HOST, port: config.BILLING_HTTP_PORT });
  const httpPort = (http.server.address() as { port: number }).port;

  if (tailer) await tailer.start();
  stripe?.start();

  const grpcServer = createGrpcServer({
    // Envoy's access-log batches are small; this bounds a misbehaving client.
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
  });
  const protos = loadEnvoyProtos();
  grpcServer.addService(
    protos.envoy.service.accesslog.v3.AccessLogService.service,
    createAlsHandlers({ writer, rule: config.BILLING_NON_BILLABLE_STATUSES, metrics, logger }),
  );
  const health = addGrpcHealth(grpcServer, [ACCESS_LOG_SERVICE]);
  const grpcBinding = await bindGrpcServer(grpcServer, config.BILLING_HOST, config.BILLING_GRPC_PORT);
  const grpcPort = grpcBinding.port;
  logger.info({ grpcPort, httpPort }, 'billing-sidecar listening');

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      setGrpcServing(health, [ACCESS_LOG_SERVICE], 'NOT_SERVING');
      grpcBinding.close();
      await shutdownGrpcServer(grpcServer, 2_000);
      await tailer?.stop();
      await stripe?.stop();
      await retention.stop();
      await writer.close();
      await http.close();
      await pool.end();
    })());

  return { pool, writer, tailer, stripe, metrics, registry, http, grpcPort, httpPort, stop };
}
