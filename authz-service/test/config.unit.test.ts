import { vi } from 'vitest';
import type { z } from 'zod';
import { describeConfigRefusals, intRange, oneOf, refused, required, url } from '../../common/test/config-refusals.js';
import { loadAuthzConfig } from '../src/config.js';

// Every refusal in authz-service/src/config.ts, one row per kind of bad value. The schema is
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

const SECRET = 's'.repeat(32);
const MASTER_KEY = Buffer.alloc(32, 7).toString('base64');
const ranges = [
  intRange('AUTHZ_GRPC_PORT', 0, 65535),
  intRange('AUTHZ_HTTP_PORT', 0, 65535),
  intRange('DATABASE_POOL_SIZE', 1, 200),
  intRange('REDIS_COMMAND_TIMEOUT_MS', 5, 10_000),
  intRange('KEY_CACHE_TTL_MS', 0),
  intRange('KEY_CACHE_MAX_ENTRIES', 100),
  intRange('NEGATIVE_CACHE_TTL_MS', 0),
  intRange('NEGATIVE_CACHE_MAX_ENTRIES', 100),
  intRange('KEY_EVENTS_POLL_MS', 10, 500),
  intRange('UNAUTHENTICATED_REFUSALS_PER_MINUTE_PER_ADDRESS', 0, 1_000_000),
  intRange('USAGE_FLUSH_INTERVAL_MS', 100),
  intRange('DEFAULT_RATE_LIMIT_PER_MINUTE', 1),
  intRange('DEFAULT_RATE_LIMIT_PER_DAY', 1),
  intRange('GATEWAY_JWT_CLOCK_TOLERANCE_S', 0, 300),
  intRange('IDEMPOTENCY_SWEEP_INTERVAL_MS', 0),
  intRange('OPERATOR_CREDENTIAL_HEALTH_INTERVAL_MS', 0),
  intRange('ROTATION_GRACE_SECONDS', 0, 30 * 86_400),
  intRange('SESSION_IDLE_TIMEOUT_MS', 1000),
  intRange('SESSION_MAX_AGE_MS', 1000),
  intRange('SESSION_SIGNIN_FAILURES_PER_MINUTE', 1, 1_000_000),
];
const notJson = (variable: string, what: string) => refused(variable, '{not json', new RegExp(`must be JSON \\(${what}\\)`));

describeConfigRefusals({
  service: 'authz-service',
  load: loadAuthzConfig,
  schema: () => captured.schema,
  base: {
    DATABASE_URL: 'postgres://tollgate@127.0.0.1:5432/tollgate',
    REDIS_URL: 'redis://127.0.0.1:6379',
    KEY_HASH_SECRETS: SECRET,
    ADMIN_TOKEN: 'a'.repeat(16),
  },
  accepted: [
    ...ranges.flatMap((r) => r.accepted),
    { variable: 'OPERATOR_CREDENTIAL_REJECT_STATUSES', value: '401, 403,429', parsed: [401, 403, 429] },
    { variable: 'KEY_CACHE_MAX_STALE_MS', value: '0', parsed: 0 },
    { variable: 'KEY_CACHE_MAX_STALE_MS', value: '3600000', parsed: 3_600_000 },
  ],
  unvalidated: {
    AUTHZ_HOST: 'any host name or address; a wrong one fails at listen',
    GATEWAY_JWT_ISSUER: 'any string is an issuer',
  },
  refusals: [
    ...ranges.flatMap((r) => r.refusals),
    ...intRange('KEY_CACHE_MAX_STALE_MS', 0).refusals,
    refused('KEY_CACHE_MAX_STALE_MS', '3600001', /at most 3600000 \(one hour\)/),
    oneOf('LOG_LEVEL', 'verbose'),
    required('DATABASE_URL'),
    ...url('DATABASE_URL', ['postgres', 'postgresql']),
    required('REDIS_URL'),
    ...url('REDIS_URL', ['redis', 'rediss']),
    refused('REDIS_CLUSTER_NODES', '127.0.0.1:7000,redis-b', /"redis-b" is not host:port/),
    refused('REDIS_CLUSTER_NODES', 'redis-a:70000', /"redis-a:70000" is not host:port/),
    refused('REDIS_CLUSTER_NODES', 'redis-a:port', /"redis-a:port" is not host:port/),
    refused('REDIS_CLUSTER_NODES', ',', /at least one host:port/),
    refused('DEFAULT_PERMISSION_SET', 'nope', /"nope" is not a permission set \(known: .*full_access/),
    refused('DATABASE_URL', ' ', /is only white space/),
    refused('REDIS_KEY_PREFIX', 'has space', /letters, digits and _ : \. - only/),
    refused('REDIS_KEY_PREFIX', 'p'.repeat(65), /letters, digits and _ : \. - only/),
    required('KEY_HASH_SECRETS'),
    refused('KEY_HASH_SECRETS', `${SECRET},short`, /each secret needs at least 32 characters/),
    refused('KEY_HASH_SECRETS', ',', /at least one secret/),
    refused('KEY_PREFIX', 'SK', /lower-case letter then up to 15/),
    refused('KEY_PREFIX', '1sk', /lower-case letter then up to 15/),
    refused('KEY_PREFIX', 'sk_live', /lower-case letter then up to 15/),
    refused('KEY_PREFIX', 'k'.repeat(17), /lower-case letter then up to 15/),
    refused('ACCEPTED_KEY_PREFIXES', 'sk,SK', /invalid prefix/),
    // An empty list is not "unset": app.ts would accept no prefix at all and refuse every key.
    refused('ACCEPTED_KEY_PREFIXES', ',', /at least one prefix/),
    required('ADMIN_TOKEN'),
    refused('ADMIN_TOKEN', `${'a'.repeat(16)},short`, /each admin token needs at least 16 characters/),
    refused('ADMIN_TOKEN', ',', /at least one token/),
    refused('STRIPE_WEBHOOK_SECRET', 'sk_test_notasigningsecret', /each secret is a Stripe signing secret/),
    refused('STRIPE_WEBHOOK_SECRET', ',', /at least one secret/),
    oneOf('RATE_LIMIT_FAILURE_MODE', 'maybe'),
    refused('CONSOLE_DIST_DIR', 'console/dist', /an absolute path/),
    oneOf('REDIS_WRITE_COALESCING', 'yes'),
    notJson('PERMISSION_SETS', 'permission sets'),
    refused('PERMISSION_SETS', '["read"]', /permission sets: \(root\) .*expected record/),
    refused('PERMISSION_SETS', '{"Ops Team":["read"]}', /permission sets: Ops Team /),
    refused('PERMISSION_SETS', '{"ops":"read"}', /permission sets: ops .*expected array/),
    refused('PERMISSION_SETS', '{"ops":["read all"]}', /permission sets: ops\.0 scope names use letters, digits/),
    notJson('ROUTE_COSTS', 'route costs'),
    refused('ROUTE_COSTS', '{"prefix":"/v1/","cost":2}', /route costs: \(root\) .*expected array/),
    refused('ROUTE_COSTS', '[{"prefix":"v1/","cost":2}]', /route costs: 0\.prefix .*start with "\/"/),
    refused('ROUTE_COSTS', '[{"prefix":"/v1/","cost":0}]', /route costs: 0\.cost /),
    refused('ROUTE_COSTS', '[{"prefix":"/v1/","cost":1.5}]', /route costs: 0\.cost /),
    refused('ROUTE_COSTS', '[{"prefix":"/v1/","weight":2}]', /route costs: .*Unrecognized key: "weight"/),
    notJson('ROUTE_SCOPES', 'route scopes'),
    refused('ROUTE_SCOPES', '{"prefix":"/admin/","scope":"admin"}', /route scopes: \(root\) .*expected array/),
    refused('ROUTE_SCOPES', '[{"prefix":"admin/","scope":"admin"}]', /route scopes: 0\.prefix .*start with "\/"/),
    refused('ROUTE_SCOPES', '[{"prefix":"/admin/"}]', /route scopes: 0\.scope /),
    refused('ROUTE_SCOPES', '[{"prefix":"/admin/","scope":"ad min"}]', /route scopes: 0\.scope scope names use/),
    refused('ROUTE_SCOPES', '[{"prefix":"/admin/","scope":"admin","methods":"POST"}]', /route scopes: 0\.methods .*expected array/),
    refused('ROUTE_SCOPES', '[{"prefix":"/admin/","scope":"admin","method":["POST"]}]', /route scopes: 0 Unrecognized key: "method"/),
    refused('GATEWAY_JWT_SECRET', 'short', /each secret needs at least 32 characters/),
    refused('GATEWAY_JWT_SECRET', `bad kid!:${SECRET}`, /key id must be letters, digits, _ \. -/),
    refused('GATEWAY_JWT_SECRET', `k1:${SECRET},k1:${'t'.repeat(32)}`, /key ids must be unique/),
    refused('GATEWAY_JWT_SECRET', ',', /expected array to have >=1 items/),
    notJson('SERVICE_TOKEN_ROUTES', 'service token routes'),
    refused('SERVICE_TOKEN_ROUTES', '[{"prefix":"internal/","project":"ops"}]', /service token routes: 0\.prefix .*start with "\/"/),
    refused('SERVICE_TOKEN_ROUTES', '[{"prefix":"/internal/"}]', /service token routes: 0\.project /),
    refused('SERVICE_TOKEN_ROUTES', '[{"prefix":"/internal/","project":""}]', /service token routes: 0\.project Too small/),
    refused('SERVICE_TOKEN_ROUTES', '[{"prefix":"/internal/","project":"ops","services":[]}]', /service token routes: 0\.services Too small/),
    refused('SERVICE_TOKEN_ROUTES', '[{"prefix":"/internal/","project":"ops","service":"api"}]', /service token routes: 0 Unrecognized key: "service"/),
    refused('VAULT_MASTER_KEYS', MASTER_KEY, /each entry is id:<base64 key>/),
    refused('VAULT_MASTER_KEYS', 'k1:c2hvcnQ=', /each master key must be 32 bytes, base64-encoded/),
    refused('VAULT_MASTER_KEYS', `bad id!:${MASTER_KEY}`, /each entry is id:<base64 key>/),
    refused('VAULT_MASTER_KEYS', `k1:${MASTER_KEY},k1:${MASTER_KEY}`, /master key ids must be unique/),
    refused('VAULT_MASTER_KEYS', ',', /expected array to have >=1 items/),
    notJson('PROVIDER_ROUTES', 'provider routes'),
    refused('PROVIDER_ROUTES', '[{"prefix":"rooms/"}]', /provider routes: 0\.prefix .*start with "\/"/),
    refused('PROVIDER_ROUTES', '[{"prefix":"/rooms/","default_provider":"dai ly"}]', /provider routes: 0\.default_provider .*pattern/),
    refused('PROVIDER_ROUTES', '[{"prefix":"/rooms/","required":"yes"}]', /provider routes: 0\.required .*expected boolean/),
    refused('PROVIDER_ROUTES', '[{"prefix":"/rooms/","provider":"daily"}]', /provider routes: 0 Unrecognized key: "provider"/),
    refused('DEFAULT_PROVIDER', '-daily', /must match pattern/),
    refused('DEFAULT_PROVIDER', 'd'.repeat(33), /must match pattern/),
    oneOf('PROVIDER_BYOK', 'sometimes'),
    refused('PROVIDER_CREDENTIALS_FROM_ENV', 'maybe', /must be true or false/),
    refused('OPERATOR_CREDENTIAL_REJECT_STATUSES', '401,teapot', /status codes from 400 to 599, comma-separated/),
    refused('OPERATOR_CREDENTIAL_REJECT_STATUSES', '200', /status codes from 400 to 599, comma-separated/),
    refused('OPERATOR_CREDENTIAL_REJECT_STATUSES', '600', /status codes from 400 to 599, comma-separated/),
    refused('OPERATOR_CREDENTIAL_REJECT_STATUSES', ',', /name at least one status code/),
  ],
});
