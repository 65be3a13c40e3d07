// Shared by the billing-sidecar tests: a test double of authz-service's Check (Tollgate's own
// contract, not a stand-in for a third party), access-log entry builders, and small waits.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import * as grpc from '@grpc/grpc-js';
import {
  loadEnvoyProtos,
  type AccessLogServiceClient,
  type AuthorizationHandlers,
  type CheckResponse__Input,
  type HTTPAccessLogEntry__Input,
  type Struct__Input,
} from '@tollgate/proto';
import { CHECK_METADATA, createLogger, EXT_AUTHZ_METADATA_NAMESPACE, type Logger } from '@tollgate/common';
import type { TestInfra, TestStack } from '@tollgate/devstack';
import { startBillingSidecar, type BillingSidecar } from '../src/app.js';
import { loadBillingConfig, type BillingConfig } from '../src/config.js';
import { DEFAULT_BILLABLE_RULE } from '../src/domain/billable.js';
import { fromJsonLogLine, type UsageRecord } from '../src/domain/usage-record.js';

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

/**
 * billing-sidecar in-process over a database of its own, with an access-log stream client; the
 * stack closes the client, stops the sidecar and then drops the database.
 */
export async function startSidecarStack(
  stack: TestStack,
  infra: TestInfra,
  label: string,
  extra: Record<string, string> = {},
): Promise<{ db: { url: string; drop: () => Promise<void> }; sidecar: BillingSidecar; client: AccessLogServiceClient }> {
  const db = await stack.database(infra, label);
  const sidecar = await stack.start(
    'billing-sidecar',
    () => startBillingSidecar(testConfig(db.url, extra), silentLogger),
    (s) => s.stop(),
  );
  const client = alsClient(sidecar.grpcPort);
  stack.defer('access-log client', () => client.close());
  return { db, sidecar, client };
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
  /** Absent for service tokens. */
  user_id?: string;
  key_id?: string;
  token_id?: string;
  credential?: string;
  stripe_customer_id?: string;
  project?: string;
  service?: string;
  cost?: string;
  provider?: string;
  credential_source?: string;
  operator_credential_id?: string;
  /** The verdict and, on a refusal, its error code (a refusal may carry nothing else). */
  decision?: string;
  error_code?: string;
}

function struct(fields: Record<string, string | undefined>): Struct__Input {
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
      metadata: identity ? { filterMetadata: { [EXT_AUTHZ_METADATA_NAMESPACE]: struct({ ...identity }) } } : {},
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

function alsClient(port: number): AccessLogServiceClient {
  const protos = loadEnvoyProtos();
  return new protos.envoy.service.accesslog.v3.AccessLogService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

/** Sends batches on one StreamAccessLogs stream and ends it (or cancels it mid-way). */
export function sendStream(client: AccessLogServiceClient, batches: HTTPAccessLogEntry__Input[][], opts: { cancelAfter?: boolean } = {}): Promise<void> {
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
 * identity and the verdict (`decision`, and on a denial `error_code`) as dynamic metadata, plus
 * x-user-id / x-api-key-id upstream for API keys; 401 carries nothing.
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
        const meta = struct({
          credential: 'api_key',
          ...identity,
          [CHECK_METADATA.decision]: deny ? 'deny' : 'allow',
          [CHECK_METADATA.errorCode]: deny ? (deny === 429 ? 'rate_limited' : 'insufficient_scope') : undefined,
        });
        res = deny
          ? {
              status: { code: deny === 429 ? 8 : 7 },
              dynamicMetadata: meta,
              deniedResponse: { status: { code: deny === 429 ? 'TooManyRequests' : 'Forbidden' }, body: '{}' },
            }
          : {
              status: { code: 0 },
              dynamicMetadata: meta,
              okResponse: {
                headers: identity.user_id
                  ? [
                      { header: { key: 'x-user-id', value: identity.user_id } },
                      { header: { key: 'x-api-key-id', value: identity.key_id ?? identity.token_id ?? '' } },
                    ]
                  : [],
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

type Attributed = Pick<
  UsageRecord,
  | 'keyId'
  | 'userId'
  | 'credential'
  | 'project'
  | 'service'
  | 'status'
  | 'decision'
  | 'errorCode'
  | 'billable'
  | 'cost'
  | 'provider'
  | 'credentialSource'
  | 'operatorCredentialId'
>;
const attribution = (r: Attributed) =>
  JSON.stringify([
    r.keyId,
    r.userId,
    r.credential,
    r.project,
    r.service,
    r.status,
    r.decision,
    r.errorCode,
    r.billable,
    r.cost,
    r.provider,
    r.credentialSource,
    r.operatorCredentialId,
  ]);

/**
 * Whether Envoy's two access logs say the same about every request: the stored usage rows
 * (most from the gRPC stream, which wins the race) against the JSON file's lines decoded
 * afresh, field by field. Returns the requests they disagree on, and how many rows came from
 * the stream (the comparison proves nothing if none did).
 */
export async function compareLogPaths(pool: pg.Pool, accessLogPath: string): Promise<{ rows: number; fromStream: number; disagreements: string[] }> {
  const file = new Map<string, string>();
  for (const line of readFileSync(accessLogPath, 'utf8').split('\n')) {
    const decoded = line ? fromJsonLogLine(line, DEFAULT_BILLABLE_RULE) : null;
    if (decoded && 'record' in decoded) file.set(decoded.record.requestId, attribution(decoded.record));
  }
  const rows = (await pool.query('select * from usage_records')).rows;
  const disagreements: string[] = [];
  for (const row of rows) {
    const stored = attribution({
      keyId: row.key_id,
      userId: row.user_id,
      credential: row.credential,
      project: row.project,
      service: row.service,
      status: row.status,
      decision: row.decision,
      errorCode: row.error_code,
      billable: row.billable,
      cost: row.cost,
      provider: row.provider,
      credentialSource: row.credential_source,
      operatorCredentialId: row.operator_credential_id,
    });
    if (file.get(row.request_id) !== stored) disagreements.push(`${row.request_id} (${row.source}): ${stored} vs file ${file.get(row.request_id) ?? 'absent'}`);
    file.delete(row.request_id);
  }
  for (const id of file.keys()) disagreements.push(`${id}: in the file only`);
  return { rows: rows.length, fromStream: rows.filter((r) => r.source === 'als').length, disagreements };
}
