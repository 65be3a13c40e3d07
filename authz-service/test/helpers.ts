import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '@tollgate/common';
import { buildBackend } from '../../backend-hello/src/server.js';
import { freePort, uniqueRedisPrefix, type RunningEnvoy, type TestInfra, type TestStack } from '@tollgate/devstack';
import { loadEnvoyProtos, type CheckResponse } from '@tollgate/proto';
import { loadAuthzConfig, type AuthzConfig } from '../src/config.js';
import { startAuthzService, type AuthzService } from '../src/app.js';
import { generateKey } from '../src/domain/key-format.js';
import type { ApiKey } from '../src/domain/api-key.js';
import type { NewKey } from '../src/stores/key-store.js';

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

/** A logger that keeps every line, so tests can search the logs (for secrets, say). */
export function memoryLogger(service = 'authz-service'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { logger: createLogger({ service, level: 'debug' }, stream), lines };
}

export interface TestEnv {
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  hashSecret: string;
  dropDatabase: () => Promise<void>;
}

/** A database, Redis prefix and hash secret of their own; the stack drops the database after everything started on it has stopped. */
export async function stackEnv(stack: TestStack, infra: TestInfra, label: string): Promise<TestEnv> {
  return envOn(infra, label, await stack.database(infra, label));
}

function envOn(infra: TestInfra, label: string, db: { url: string; drop: () => Promise<void> }): TestEnv {
  return {
    databaseUrl: db.url,
    redisUrl: infra.redisUrl,
    redisPrefix: uniqueRedisPrefix(infra, label),
    hashSecret: randomBytes(32).toString('hex'),
    dropDatabase: db.drop,
  };
}

export function testConfig(env: TestEnv, overrides: Record<string, string> = {}): AuthzConfig {
  return loadAuthzConfig({
    AUTHZ_HOST: '127.0.0.1',
    AUTHZ_GRPC_PORT: '0',
    AUTHZ_HTTP_PORT: '0',
    DATABASE_URL: env.databaseUrl,
    REDIS_URL: env.redisUrl,
    REDIS_KEY_PREFIX: env.redisPrefix,
    KEY_HASH_SECRETS: env.hashSecret,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    LOG_LEVEL: 'debug',
    // Generous, so a CPU-starved test machine does not turn into the fail-open path and let
    // extra requests through a limit the test counts exactly; failure tests kill Redis outright.
    REDIS_COMMAND_TIMEOUT_MS: '2000',
    // Off: suites send many refusals from 127.0.0.1 on purpose; refusal-limit.int.test.ts sets it.
    UNAUTHENTICATED_REFUSALS_PER_MINUTE_PER_ADDRESS: '0',
    ...overrides,
  });
}

export async function startTestAuthz(env: TestEnv, overrides: Record<string, string> = {}): Promise<AuthzService & { lines: string[] }> {
  const { logger, lines } = memoryLogger();
  const service = await startAuthzService(testConfig(env, overrides), logger);
  return Object.assign(service, { lines });
}

export type TestAuthz = Awaited<ReturnType<typeof startTestAuthz>>;

/** startTestAuthz, stopped by the stack. */
export function stackAuthz(stack: TestStack, env: TestEnv, overrides: Record<string, string> = {}): Promise<TestAuthz> {
  return stack.start(
    'authz-service',
    () => startTestAuthz(env, overrides),
    (service) => service.stop(),
  );
}

/** A Check client of the service, closed by the stack. */
export function stackCheck(stack: TestStack, service: AuthzService): CheckFn {
  const client = checkClient(service.grpcPort);
  stack.defer('Check client', client.close);
  return client.check;
}

export interface AuthzStack {
  env: TestEnv;
  authz: TestAuthz;
}

/**
 * The usual test gateway on the stack: authz-service over a database of its own, and with
 * `envoy`, a real Envoy (and backend-hello) in front of it.
 */
export async function startAuthzStack(
  stack: TestStack,
  infra: TestInfra,
  label: string,
  opts: { config?: Record<string, string>; envoy: true | EnvoyFrontOptions },
): Promise<AuthzStack & { front: EnvoyFront }>;
export async function startAuthzStack(stack: TestStack, infra: TestInfra, label: string, opts?: { config?: Record<string, string> }): Promise<AuthzStack>;
export async function startAuthzStack(
  stack: TestStack,
  infra: TestInfra,
  label: string,
  opts: { config?: Record<string, string>; envoy?: true | EnvoyFrontOptions } = {},
): Promise<AuthzStack & { front?: EnvoyFront }> {
  const env = await stackEnv(stack, infra, label);
  const authz = await stackAuthz(stack, env, opts.config);
  if (!opts.envoy) return { env, authz };
  return { env, authz, front: await startEnvoyFront(stack, authz.grpcPort, opts.envoy === true ? {} : opts.envoy) };
}

/** Creates a key through the store (the management API has its own tests). */
export async function createKey(
  service: AuthzService,
  fields: Partial<Omit<NewKey, 'keyHash' | 'keyPrefix'>> & { userId?: string } = {},
): Promise<{ key: ApiKey; plaintext: string }> {
  const generated = generateKey(service.deps.config.KEY_PREFIX);
  const key = await service.deps.keyStore.insert({
    userId: fields.userId ?? `user_${randomBytes(3).toString('hex')}`,
    name: fields.name ?? 'test key',
    permissionSet: fields.permissionSet === undefined ? 'full_access' : fields.permissionSet,
    ...fields,
    keyPrefix: generated.displayPrefix,
    keyHash: service.deps.hasher.primary(generated.plaintext),
  });
  return { key, plaintext: generated.plaintext };
}

interface CheckCall {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
}

export type CheckFn = (call: CheckCall) => Promise<CheckResponse>;

/** A real gRPC client of envoy.service.auth.v3.Authorization, built from the same protos Envoy uses. */
export function checkClient(port: number): { check: CheckFn; close: () => void } {
  const protos = loadEnvoyProtos();
  const client = new protos.envoy.service.auth.v3.Authorization(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const check: CheckFn = ({ method = 'GET', path = '/hello', headers = {} }) =>
    new Promise((resolve, reject) =>
      client.Check({ attributes: { request: { http: { method, path, headers } } } }, (err, res) => (err ? reject(err) : resolve(res!))),
    );
  return { check, close: () => client.close() };
}

export function httpStatusOf(res: CheckResponse): number {
  if (res.status?.code === 0) return 200;
  const names: Record<string, number> = { Unauthorized: 401, Forbidden: 403, TooManyRequests: 429, ServiceUnavailable: 503, BadRequest: 400 };
  const code = res.deniedResponse?.status?.code as unknown as string;
  return names[code] ?? Number(code);
}

export function headersOf(list: { header?: { key: string; value: string } | null }[] | undefined): Record<string, string> {
  return Object.fromEntries((list ?? []).filter((h) => h.header).map((h) => [h.header!.key, h.header!.value]));
}

export function metadataOf(res: CheckResponse): Record<string, string> {
  const fields = res.dynamicMetadata?.fields ?? {};
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v.stringValue ?? '']));
}

export async function metricValue(service: AuthzService, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = await service.deps.registry.getSingleMetric(name)?.get();
  if (!metric) return 0;
  return metric.values.filter((v) => Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val)).reduce((sum, v) => sum + v.value, 0);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Concurrent requests for isolation tests on the shared 2-core test machine: `total` of them,
 * `width` in flight at a time (so the kinds a caller interleaves by index meet in every wave).
 * Envoy answers an empty 503 when the Check misses its 0.5 s timeout (envoy.yaml), which such a
 * loaded machine can cause; that request never reached the upstream, so it is sent again.
 */
export async function inWaves<T extends { status: number; text: string }>(total: number, width: number, send: (i: number) => Promise<T>): Promise<T[]> {
  const persist = async (i: number) => {
    for (let attempt = 0; ; attempt++) {
      const r = await send(i);
      if (!(r.status === 503 && r.text === '') || attempt === 5) return r;
    }
  };
  const results: T[] = [];
  for (let start = 0; start < total; start += width) {
    results.push(...(await Promise.all(Array.from({ length: Math.min(width, total - start) }, (_, j) => persist(start + j)))));
  }
  return results;
}

export interface EnvoyFront {
  envoy: RunningEnvoy;
  /** Envoy's public URL. */
  url: string;
}

export interface EnvoyFrontOptions {
  alsPort?: number;
  accessLogPath?: string;
  /** The HTTPS listener too, serving the certificate in this directory (createLocalTls). */
  tls?: { certDir: string; redirect?: boolean };
  /** Sees every request that reaches backend-hello (what got past the gateway, and with which headers). */
  onUpstreamRequest?: (req: { method: string; url: string; headers: Record<string, string | string[] | undefined> }) => void;
  /** A status for backend-hello to answer instead (a provider rejecting a credential, say); undefined: answer normally. */
  upstreamRefusal?: (headers: Record<string, string | string[] | undefined>) => number | undefined;
}

/**
 * The public side of a test gateway on the stack: backend-hello on a free port and a real Envoy
 * (the canonical envoy.yaml rendered for loopback) whose ext_authz calls the given Check port.
 */
export async function startEnvoyFront(stack: TestStack, authzGrpcPort: number | null, opts: EnvoyFrontOptions = {}): Promise<EnvoyFront> {
  const backendPort = await freePort();
  await stack.start(
    'backend-hello',
    async () => {
      const backend = buildBackend(createLogger({ service: 'backend-hello', level: 'silent' }));
      const seen = opts.onUpstreamRequest;
      if (seen) backend.addHook('onRequest', async (req) => seen({ method: req.method, url: req.url, headers: req.headers }));
      const refusal = opts.upstreamRefusal;
      if (refusal)
        backend.addHook('onRequest', async (req, reply) => {
          const status = refusal(req.headers);
          if (status !== undefined) return reply.code(status).send({ error: 'rejected_by_upstream' });
        });
      await backend.listen({ host: '127.0.0.1', port: backendPort });
      return backend;
    },
    (backend) => backend.close(),
  );
  const envoy = await stack.envoy({ backendPort, authzPort: authzGrpcPort, alsPort: opts.alsPort, accessLogPath: opts.accessLogPath, tls: opts.tls });
  return { envoy, url: envoy.url };
}
