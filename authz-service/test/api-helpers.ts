import type { FastifyInstance } from 'fastify';
import { onNewStack, type RunningEnvoy, type TestStack, type TestInfra } from '@tollgate/devstack';
import { buildManagementApi } from '../src/http/api.js';
import { closeServiceDeps, createServiceDeps, type ServiceDeps } from '../src/deps.js';
import { memoryLogger, stackEnv, startAuthzStack, testConfig, TEST_ADMIN_TOKEN, type TestAuthz, type TestEnv } from './helpers.js';

/** A second admin token configured beside the first: tokens rotate by listing both. */
export const SECOND_ADMIN_TOKEN = 'second-admin-token-fedcba9876543210';

export interface ApiAnswer {
  status: number;
  headers: Headers;
  /** Parsed JSON, or the raw text when the body is not JSON. */
  body: any;
  text: string;
}

interface CallOptions {
  body?: unknown;
  /** Sent as is (for malformed JSON and the like). */
  rawBody?: string;
  /** Bearer token; null sends no Authorization header. Defaults to the admin token. */
  token?: string | null;
  headers?: Record<string, string>;
}

export interface TestApi {
  url: string;
  deps: ServiceDeps;
  app: FastifyInstance;
  env: TestEnv;
  lines: string[];
  call(method: string, path: string, options?: CallOptions): Promise<ApiAnswer>;
  stop(): Promise<void>;
}

/** The management API alone (no Check), on a free loopback port, over real Postgres and Redis. */
export async function startTestApi(infra: TestInfra, label: string, overrides: Record<string, string> = {}): Promise<TestApi> {
  return onNewStack((stack) => startApiOn(stack, infra, label, overrides));
}

async function startApiOn(stack: TestStack, infra: TestInfra, label: string, overrides: Record<string, string>): Promise<Omit<TestApi, 'stop'>> {
  const env = await stackEnv(stack, infra, label);
  const config = testConfig(env, { ADMIN_TOKEN: `${TEST_ADMIN_TOKEN},${SECOND_ADMIN_TOKEN}`, ...overrides });
  const { logger, lines } = memoryLogger();
  const deps = await stack.start('authz-service stores', () => createServiceDeps(config, logger), closeServiceDeps);
  const app = buildManagementApi(deps);
  await stack.start(
    'management API',
    () => app.listen({ host: '127.0.0.1', port: 0 }),
    () => app.close(),
  );
  const address = app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

  const call = async (method: string, path: string, o: CallOptions = {}): Promise<ApiAnswer> => {
    const headers: Record<string, string> = { ...o.headers };
    const token = o.token === undefined ? TEST_ADMIN_TOKEN : o.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (o.rawBody !== undefined) body = o.rawBody;
    else if (o.body !== undefined) body = JSON.stringify(o.body);
    if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    const res = await fetch(`${url}${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  };

  return {
    url,
    deps,
    app,
    env,
    lines,
    call,
  };
}

/** Row counts of every table a management call may write, to prove a failed call wrote nothing. */
export async function tableCounts(deps: ServiceDeps): Promise<Record<string, number | string>> {
  const r = await deps.pool.query<{ keys: string; audit: string; idem: string; updated: string }>(
    `select (select count(*) from api_keys) as keys, (select count(*) from audit_log) as audit,
            (select count(*) from idempotency_keys) as idem,
            (select coalesce(max(updated_at)::text, '') from api_keys) as updated`,
  );
  const row = r.rows[0]!;
  return { api_keys: Number(row.keys), audit_log: Number(row.audit), idempotency_keys: Number(row.idem), last_update: row.updated };
}

export const seedBody = (userId: string, extra: Record<string, unknown> = {}) => ({
  user_id: userId,
  name: 'My API Key',
  rate_limit_per_minute: 100,
  rate_limit_per_day: 10000,
  ...extra,
});

export interface TestGateway {
  env: TestEnv;
  authz: TestAuthz;
  envoy: RunningEnvoy;
  /** The management API's base URL (same process as the Check). */
  apiUrl: string;
  /** An admin call to the management API; throws on a non-2xx answer, naming it. */
  manage(method: string, path: string, body?: unknown): Promise<any>;
  stop(): Promise<void>;
}

/** The gateway as clients see it: real Envoy → authz-service (Check + management API) → backend-hello. */
export async function startTestGateway(infra: TestInfra, label: string, overrides: Record<string, string> = {}): Promise<TestGateway> {
  return onNewStack(async (stack) => {
    const { env, authz, front } = await startAuthzStack(stack, infra, label, { config: overrides, envoy: true });
    const apiUrl = `http://127.0.0.1:${authz.httpPort}`;
    const manage = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${apiUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const json = await res.json();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    return { env, authz, envoy: front.envoy, apiUrl, manage };
  });
}
