// Shared by the billing-sidecar tests: a test double of authz-service's Check (Tollgate's own
// contract, not a stand-in for a third party), access-log entry builders, and small waits.
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import {
  loadEnvoyProtos,
  type AccessLogServiceClient,
  type AuthorizationHandlers,
  type CheckResponse__Input,
  type HTTPAccessLogEntry__Input,
  type Struct__Input,
} from '@tollgate/proto';
import { createLogger, type Logger } from '@tollgate/common';
import { loadBillingConfig, type BillingConfig } from '../src/config.js';

export const silentLogger: Logger = createLogger({ service: 'billing-test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export function testConfig(databaseUrl: string, extra: Record<string, string> = {}): BillingConfig {
  return loadBillingConfig({
    DATABASE_URL: databaseUrl,
    BILLING_GRPC_PORT: '0',
    BILLING_HTTP_PORT: '0',
    BILLING_FLUSH_INTERVAL_MS: '20',
    ACCESS_LOG_POLL_INTERVAL_MS: '50',
    ...extra,
  });
}

export async function waitUntil<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export interface Identity {
  user_id: string;
  key_id?: string;
  token_id?: string;
  credential?: string;
  stripe_customer_id?: string;
}

export function struct(fields: Record<string, string | undefined>): Struct__Input {
  const out: Struct__Input = { fields: {} };
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) out.fields![k] = { stringValue: v };
  return out;
}

/** An HTTPAccessLogEntry as Envoy sends it for one request through ext_authz. */
export function alsEntry(opts: {
  requestId?: string;
  identity?: Identity | null;
  status?: number;
  path?: string;
  method?: string;
  startMs?: number;
  requestBytes?: number;
  responseBytes?: number;
}): HTTPAccessLogEntry__Input {
  const start = opts.startMs ?? Date.now();
  const identity = opts.identity === undefined ? { user_id: 'user_1', key_id: 'key_1', credential: 'api_key' } : opts.identity;
  return {
    commonProperties: {
      startTime: { seconds: String(Math.floor(start / 1000)), nanos: (start % 1000) * 1e6 },
      timeToLastDownstreamTxByte: { seconds: '0', nanos: 3_000_000 },
      metadata: identity ? { filterMetadata: { 'envoy.filters.http.ext_authz': struct({ ...identity }) } } : {},
    },
    request: {
      requestMethod: (opts.method ?? 'GET') as 'GET',
      path: opts.path ?? '/hello?x=1',
      requestId: opts.requestId ?? randomUUID(),
      requestBodyBytes: String(opts.requestBytes ?? 0),
    },
    response: { responseCode: { value: opts.status ?? 200 }, responseBodyBytes: String(opts.responseBytes ?? 42) },
  };
}

export function alsClient(port: number): AccessLogServiceClient {
  const protos = loadEnvoyProtos();
  return new protos.envoy.service.accesslog.v3.AccessLogService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

/** Sends batches on one StreamAccessLogs stream and ends it (or cancels it mid-way). */
export function sendStream(
  client: AccessLogServiceClient,
  batches: HTTPAccessLogEntry__Input[][],
  opts: { cancelAfter?: boolean } = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    const call = client.streamAccessLogs((err) => {
      if (err && !(opts.cancelAfter && err.code === grpc.status.CANCELLED)) reject(err);
      else resolve();
    });
    batches.forEach((logEntry, i) => {
      call.write({
        ...(i === 0 && { identifier: { logName: 'test', node: { id: 'test' } } }),
        httpLogs: { logEntry },
      });
    });
    if (opts.cancelAfter) setTimeout(() => call.cancel(), 100);
    else call.end();
  });
}

/**
 * The ext_authz contract authz-service implements for billing: on allow (and on 403/429) the
 * identity as dynamic metadata, plus x-user-id / x-api-key-id upstream; 401 carries nothing.
 * Keys: `Bearer <key>` where the key names the identity in `keys`.
 */
export async function startCheckDouble(keys: Record<string, Identity & { deny?: 403 | 429 }>): Promise<{ port: number; stop: () => void }> {
  const protos = loadEnvoyProtos();
  const handlers: AuthorizationHandlers = {
    Check(call, callback) {
      const headers = call.request.attributes?.request?.http?.headers ?? {};
      const key = (headers.authorization ?? '').replace(/^Bearer /, '');
      const who = keys[key];
      let res: CheckResponse__Input;
      if (!who) {
        res = { status: { code: 16 }, deniedResponse: { status: { code: 'Unauthorized' }, body: '{"error":"unauthorized"}' } };
      } else {
        const { deny, ...identity } = who;
        const meta = struct({ credential: 'api_key', ...identity });
        res = deny
          ? { status: { code: deny === 429 ? 8 : 7 }, dynamicMetadata: meta, deniedResponse: { status: { code: deny === 429 ? 'TooManyRequests' : 'Forbidden' }, body: '{}' } }
          : {
              status: { code: 0 },
              dynamicMetadata: meta,
              okResponse: {
                headers: [
                  { header: { key: 'x-user-id', value: identity.user_id } },
                  { header: { key: 'x-api-key-id', value: identity.key_id ?? identity.token_id ?? '' } },
                ],
                headersToRemove: ['authorization'],
              },
            };
      }
      callback(null, res);
    },
  };
  const server = new grpc.Server();
  server.addService(protos.envoy.service.auth.v3.Authorization.service, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, stop: () => server.forceShutdown() };
}
