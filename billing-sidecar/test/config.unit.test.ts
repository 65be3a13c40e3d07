import { vi } from 'vitest';
import type { z } from 'zod';
import { describeConfigRefusals, intRange, oneOf, refused, required, url } from '../../common/test/config-refusals.js';
import { loadBillingConfig } from '../src/config.js';

// Every refusal in billing-sidecar/src/config.ts, one row per kind of bad value. The schema is
// taken from the loadConfig call, so a new variable fails the completeness test until it has rows.
const captured = vi.hoisted(() => ({ schema: undefined as z.ZodObject | undefined }));
vi.mock('@tollgate/common', async (importOriginal) => {
  const real = await importOriginal<typeof import('@tollgate/common')>();
  return {
    ...real,
    loadConfig: ((schema, env) => {
      captured.schema = schema;
      return real.loadConfig(schema, env);
    }) as typeof real.loadConfig,
  };
});

const ranges = [
  intRange('BILLING_GRPC_PORT', 0, 65535),
  intRange('BILLING_HTTP_PORT', 0, 65535),
  intRange('DATABASE_POOL_SIZE', 2, 200),
  intRange('ACCESS_LOG_POLL_INTERVAL_MS', 20, 60_000),
  intRange('BILLING_BATCH_SIZE', 1, 20_000),
  intRange('BILLING_FLUSH_INTERVAL_MS', 1, 60_000),
  intRange('BILLING_MAX_BUFFERED', 100, 1_000_000),
  intRange('USAGE_RETENTION_DAYS', 0, 36_500),
  intRange('STRIPE_AGGREGATION_INTERVAL_SECONDS', 1, 86_400),
  intRange('STRIPE_MAX_CONCURRENCY', 1, 64),
  intRange('STRIPE_TIMEOUT_MS', 100, 120_000),
  intRange('STRIPE_RETRY_BASE_MS', 1, 600_000),
  intRange('STRIPE_RETRY_MAX_MS', 1, 86_400_000),
  intRange('STRIPE_DRAIN_INTERVAL_MS', 10, 60_000),
];

describeConfigRefusals({
  service: 'billing-sidecar',
  load: loadBillingConfig,
  schema: () => captured.schema,
  base: { DATABASE_URL: 'postgres://tollgate@127.0.0.1:5432/tollgate' },
  accepted: [
    ...ranges.flatMap((r) => r.accepted),
    // Not an integer: calls per second may be a fraction.
    { variable: 'STRIPE_MAX_CALLS_PER_SECOND', value: '0.1', parsed: 0.1 },
    { variable: 'STRIPE_MAX_CALLS_PER_SECOND', value: '1000', parsed: 1000 },
    // 0 turns rotation off; otherwise at least 4 KiB.
    { variable: 'ACCESS_LOG_ROTATE_BYTES', value: '0', parsed: 0 },
    { variable: 'ACCESS_LOG_ROTATE_BYTES', value: '4096', parsed: 4096 },
    { variable: 'ACCESS_LOG_HOST_ID', value: 'tollgate-envoy-7c9f:0', parsed: 'tollgate-envoy-7c9f:0' },
    { variable: 'STRIPE_BILLED_USAGE', value: 'managed', parsed: 'managed' },
    { variable: 'STRIPE_MANAGED_METER_EVENTS', value: '{"Daily":"managed.daily"}', parsed: new Map([['daily', 'managed.daily']]) },
  ],
  unvalidated: {
    BILLING_HOST: 'any host name or address; a wrong one fails at listen',
    ENVOY_ACCESS_LOG_PATH: 'any path; a missing file is waited for',
    STRIPE_API_KEY: 'Stripe key formats are Stripe’s; a wrong key fails at the first call',
  },
  refusals: [
    ...ranges.flatMap((r) => r.refusals),
    oneOf('LOG_LEVEL', 'verbose'),
    required('DATABASE_URL'),
    ...url('DATABASE_URL', ['postgres', 'postgresql']),
    refused('BILLING_NON_BILLABLE_STATUSES', '429,9xx', /"9xx" is neither a status code \(429\) nor a status class \(5xx\)/),
    refused('BILLING_NON_BILLABLE_STATUSES', '5xx,teapot', /"teapot" is neither a status code/),
    refused('BILLING_NON_BILLABLE_STATUSES', '600', /"600" is neither a status code/),
    ...url('STRIPE_API_BASE', ['http', 'https']),
    refused('STRIPE_METER_EVENT_NAME', 'api requests', /letters, digits and _ \. : - \(at most 100\)/),
    refused('STRIPE_METER_EVENT_NAME', 'e'.repeat(101), /letters, digits and _ \. : - \(at most 100\)/),
    refused('STRIPE_MAX_CALLS_PER_SECOND', 'fast', /expected number, received NaN/),
    refused('STRIPE_MAX_CALLS_PER_SECOND', '0.09', /Too small/),
    refused('STRIPE_MAX_CALLS_PER_SECOND', '1000.5', /Too big/),
    refused('ACCESS_LOG_ROTATE_BYTES', 'big', /expected number, received NaN/),
    refused('ACCESS_LOG_ROTATE_BYTES', '4096.5', /expected int/),
    refused('ACCESS_LOG_ROTATE_BYTES', '100', /0 \(off\) or 4096 to 2\^40 bytes/),
    refused('ACCESS_LOG_ROTATE_BYTES', String(2 ** 40 + 1), /0 \(off\) or 4096 to 2\^40 bytes/),
    oneOf('STRIPE_BILLED_USAGE', 'some'),
    refused('STRIPE_MANAGED_METER_EVENTS', 'openai=managed', /must be JSON: an object of provider name to meter event name/),
    refused('STRIPE_MANAGED_METER_EVENTS', '["managed_openai"]', /must be a JSON object of provider name to meter event name/),
    refused('STRIPE_MANAGED_METER_EVENTS', '"managed"', /must be a JSON object of provider name to meter event name/),
    refused('STRIPE_MANAGED_METER_EVENTS', '{"open ai":"managed_openai"}', /"open ai": provider names are letters, digits, _ or -, at most 32/),
    refused('STRIPE_MANAGED_METER_EVENTS', '{"openai":"managed openai"}', /"openai": meter event names are letters, digits and _ \. : - \(at most 100\)/),
    refused('STRIPE_MANAGED_METER_EVENTS', '{"openai":5}', /"openai": meter event names are letters/),
    refused('STRIPE_MANAGED_METER_EVENTS', '{"openai":"a","OpenAI":"b"}', /"OpenAI": provider names are case-insensitive, and this one is named twice/),
    ...url('ENVOY_ADMIN_URL', ['http', 'https']),
    refused('ACCESS_LOG_HOST_ID', 'pod name', /letters, digits and _ \. : - \(at most 253\)/),
    refused('ACCESS_LOG_HOST_ID', 'h'.repeat(254), /letters, digits and _ \. : - \(at most 253\)/),
  ],
});
