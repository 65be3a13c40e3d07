import {
  CHECK_METADATA,
  EXT_AUTHZ_METADATA_NAMESPACE,
  pathOnly,
  UNATTRIBUTED,
  type CheckVerdict,
  type CredentialKind,
  type CredentialSource,
  type UsageCredential,
} from '@tollgate/common';
import type { HTTPAccessLogEntry, Struct } from '@tollgate/proto';
import { isBillable, type BillableRule } from './billable.js';

/** Where a usage record was read from: Envoy's gRPC access log stream or its JSON file log. */
type UsageSource = 'als' | 'file';

/** One logged request with a key identity, or a refusal without one (UNATTRIBUTED): a row of `usage_records`. */
export interface UsageRecord extends Identity {
  requestId: string;
  method: string;
  /** The request path without its query string. */
  path: string;
  status: number;
  /** Body bytes received from the client / sent to it (the same numbers both log sources carry). */
  requestBytes: number;
  responseBytes: number;
  durationMs: number;
  startedAt: Date;
  /** `deny` when authz-service refused the request itself; such a request is never billable. */
  decision: CheckVerdict;
  /** The refusal's error code (`insufficient_scope`, `rate_limited`, …); null when allowed. */
  errorCode: string | null;
  billable: boolean;
  source: UsageSource;
}

/** Why an entry did not become a record (a metric label). */
type SkipReason = 'no_identity' | 'no_request_id' | 'malformed';

export type DecodeResult = { record: UsageRecord } | { skip: SkipReason };

/** The identity authz-service publishes (common/src/authz-metadata.ts), as a usage row holds it. */
interface Identity {
  /** The API key id, or the service token's id (its `jti`) when `credential` is `service_token`; '' when `none`. */
  keyId: string;
  /** The key's owner; null for a service token, which belongs to a project and service instead. */
  userId: string | null;
  credential: UsageCredential;
  stripeCustomerId: string | null;
  project: string | null;
  service: string | null;
  /** Cost units (ROUTE_COSTS' weight; 1 when the route has none): what Stripe bills for it. */
  cost: number;
  /** Provider routes: the provider, and whose credential served it (docs/vault.md). */
  provider: string | null;
  credentialSource: CredentialSource | null;
  /** The operator credential's id when `credentialSource` is `operator`; never a secret. */
  operatorCredentialId: string | null;
}

const MAX_FIELD = 512;
const MAX_PATH = 2048;

function clean(v: unknown, max = MAX_FIELD): string | null {
  if (typeof v !== 'string' || v === '' || v === '-') return null;
  return v.length > max ? v.slice(0, max) : v;
}

function toInt(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v !== '' ? Number(v) : 0;
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : 0;
}

// authz-service refuses ROUTE_COSTS weights above this; a larger number is not its doing.
const MAX_COST = 1_000_000;
const CREDENTIAL_SOURCES: readonly string[] = ['byok', 'user', 'operator'] satisfies CredentialSource[];

/**
 * The published cost, or 1: authz-service leaves the field out for weight 1, and anything that
 * is not a whole number from 1 to MAX_COST cannot have come from ROUTE_COSTS, so it is billed
 * as an unweighted request rather than as nothing or as an absurd amount.
 */
function costOf(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,7}$/.test(v) ? Number(v) : Number.NaN;
  return Number.isInteger(n) && n >= 1 && n <= MAX_COST ? n : 1;
}

function credentialSourceOf(v: unknown): CredentialSource | null {
  const s = clean(v, 16);
  return s && CREDENTIAL_SOURCES.includes(s) ? (s as CredentialSource) : null;
}

/** The path a usage row stores: no query or fragment (pathOnly), never empty, bounded. */
export function stripQuery(path: string): string {
  return (pathOnly(path) || '/').slice(0, MAX_PATH);
}

/**
 * Builds the identity from authz-service's fields. API keys carry `key_id` and their owner's
 * `user_id`; service tokens carry `token_id` instead, which then stands in as the key id (with
 * `credential` saying which), and their `project` and `service` but no user.
 */
function identityOf(fields: Record<string, unknown>): Identity | null {
  const credential = clean(fields[CHECK_METADATA.credential]) === 'service_token' ? 'service_token' : ('api_key' satisfies CredentialKind);
  const keyId = clean(fields[CHECK_METADATA.keyId]) ?? clean(fields[CHECK_METADATA.tokenId]);
  const userId = clean(fields[CHECK_METADATA.userId]);
  if (!keyId || (!userId && credential !== 'service_token')) return unattributedRefusal(fields);
  const credentialSource = credentialSourceOf(fields[CHECK_METADATA.credentialSource]);
  return {
    keyId,
    userId,
    credential,
    stripeCustomerId: clean(fields[CHECK_METADATA.stripeCustomerId]),
    project: clean(fields[CHECK_METADATA.project]),
    service: clean(fields[CHECK_METADATA.service]),
    cost: costOf(fields[CHECK_METADATA.cost]),
    provider: clean(fields[CHECK_METADATA.provider], 64),
    credentialSource,
    operatorCredentialId: credentialSource === 'operator' ? clean(fields[CHECK_METADATA.operatorCredentialId], 128) : null,
  };
}

// One object for every unattributed refusal: records spread it, so none is made per entry.
const UNATTRIBUTED_IDENTITY: Readonly<Identity> = Object.freeze({
  keyId: UNATTRIBUTED.keyId,
  userId: null,
  credential: UNATTRIBUTED.credential,
  stripeCustomerId: null,
  project: null,
  service: null,
  cost: 1,
  provider: null,
  credentialSource: null,
  operatorCredentialId: null,
});

/**
 * A request authz-service refused without a credential to name (an unknown key, say): recorded
 * under UNATTRIBUTED so the all-traffic outcome charts and denials count it. An entry that is
 * neither attributed nor one of the gateway's refusals (a route Envoy served without a Check)
 * is not usage.
 */
function unattributedRefusal(fields: Record<string, unknown>): Identity | null {
  return clean(fields[CHECK_METADATA.decision]) === 'deny' ? UNATTRIBUTED_IDENTITY : null;
}

/**
 * The gateway's verdict and whether the request is billed. A refusal by authz-service is never
 * billable, whatever status it carries; an entry without a verdict (logged by an authz-service
 * older than the field) falls back to the status rule alone.
 */
function verdictOf(fields: Record<string, unknown>, rule: BillableRule, status: number): Pick<UsageRecord, 'decision' | 'errorCode' | 'billable'> {
  if (clean(fields[CHECK_METADATA.decision]) === 'deny') {
    return { decision: 'deny', errorCode: clean(fields[CHECK_METADATA.errorCode], 64), billable: false };
  }
  return { decision: 'allow', errorCode: null, billable: isBillable(rule, status) };
}

function structStrings(s: Struct | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) {
    if (v.kind === 'stringValue') out[k] = v.stringValue;
    else if (v.kind === 'numberValue') out[k] = String(v.numberValue);
  }
  return out;
}

function timestampToDate(ts: { seconds: string; nanos: number } | null | undefined): Date | null {
  if (!ts) return null;
  const ms = Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6);
  return Number.isFinite(ms) && ms > 0 ? new Date(ms) : null;
}

function durationToMs(d: { seconds: string; nanos: number } | null | undefined): number {
  if (!d) return 0;
  return Math.max(0, Math.round(Number(d.seconds) * 1000 + d.nanos / 1e6));
}

/** An entry from Envoy's gRPC access log stream. */
export function fromAlsEntry(entry: HTTPAccessLogEntry, rule: BillableRule, now = new Date()): DecodeResult {
  const req = entry.request;
  const common = entry.commonProperties;
  const requestId = clean(req?.requestId, 128);
  if (!requestId) return { skip: 'no_request_id' };
  const meta = structStrings(common?.metadata?.filterMetadata?.[EXT_AUTHZ_METADATA_NAMESPACE]);
  // authz-service also sets x-user-id / x-api-key-id upstream; they are a fallback when the
  // metadata is absent (Envoy strips any a client sends before ext_authz runs).
  const headers = req?.requestHeaders ?? {};
  const identity = identityOf({
    [CHECK_METADATA.userId]: headers['x-user-id'],
    [CHECK_METADATA.keyId]: headers['x-api-key-id'],
    ...meta,
  });
  if (!identity) return { skip: 'no_identity' };
  const status = entry.response?.responseCode?.value ?? 0;
  return {
    record: {
      requestId,
      ...identity,
      method: req?.requestMethod && req.requestMethod !== 'METHOD_UNSPECIFIED' ? String(req.requestMethod) : 'UNKNOWN',
      path: stripQuery(req?.originalPath || req?.path || '/'),
      status,
      requestBytes: toInt(req?.requestBodyBytes),
      responseBytes: toInt(entry.response?.responseBodyBytes),
      durationMs: durationToMs(common?.timeToLastDownstreamTxByte),
      startedAt: timestampToDate(common?.startTime) ?? now,
      ...verdictOf(meta, rule, status),
      source: 'als',
    },
  };
}

/**
 * A line of Envoy's JSON file access log (envoy/envoy.yaml's `json_format`). Envoy writes a
 * missing value as null or "-"; both mean absent.
 */
export function fromJsonLogLine(line: string, rule: BillableRule, now = new Date()): DecodeResult {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch {
    return { skip: 'malformed' };
  }
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return { skip: 'malformed' };
  const f = obj as Record<string, unknown>;
  const requestId = clean(f.request_id, 128);
  if (!requestId) return { skip: 'no_request_id' };
  const identity = identityOf(f);
  if (!identity) return { skip: 'no_identity' };
  const status = toInt(f.status);
  const started = typeof f.start_time === 'string' ? new Date(f.start_time) : null;
  return {
    record: {
      requestId,
      ...identity,
      method: clean(f.method, 32) ?? 'UNKNOWN',
      path: stripQuery(clean(f.path, 8192) ?? '/'),
      status,
      requestBytes: toInt(f.request_bytes),
      responseBytes: toInt(f.response_bytes),
      durationMs: toInt(f.duration_ms),
      startedAt: started && !Number.isNaN(started.getTime()) ? started : now,
      ...verdictOf(f, rule, status),
      source: 'file',
    },
  };
}
