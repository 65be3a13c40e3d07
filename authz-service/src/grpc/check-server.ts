import { Histogram, Counter, type Registry } from 'prom-client';
import type { CheckMetadata, ErrorBody, Logger } from '@tollgate/common';
import { AUTHORIZATION_SERVICE, RpcCode } from '@tollgate/proto';
import type { Checker } from '../check/checker.js';
import { decodeCheckRequest, type CheckRequestFields } from './check-request-decoding.js';
import { encodeCheckResponse, type CheckAnswer, type HeaderOption } from './check-response-encoding.js';
import { publishedMetadata, type Decision } from '../check/decision.js';
import { refusalBucketOf, tooManyFailedAttempts, type RefusalLimiter } from '../check/refusal-limiter.js';
import { GrpcStatus, type UnaryCall, type UnaryCallback, type UnaryMethod } from './h2-grpc-server.js';

const RPC_FOR_STATUS: Record<number, number> = {
  400: 3, // INVALID_ARGUMENT
  401: RpcCode.UNAUTHENTICATED,
  402: RpcCode.PERMISSION_DENIED,
  403: RpcCode.PERMISSION_DENIED,
  429: RpcCode.RESOURCE_EXHAUSTED,
  503: RpcCode.UNAVAILABLE,
};

// Loops rather than Object.entries/map/fromEntries: this runs for every Check, and the arrays
// those make were most of what building a response allocated (docs/benchmarks.md, "Check").
function headerOptions(headers: Record<string, string>): HeaderOption[] {
  const options: HeaderOption[] = [];
  for (const key in headers) options.push({ header: { key, value: headers[key]! }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' });
  return options;
}

function struct(metadata: CheckMetadata): NonNullable<CheckAnswer['dynamicMetadata']> {
  const fields: Record<string, { stringValue: string }> = {};
  for (const key in metadata) {
    const value = metadata[key as keyof CheckMetadata];
    if (value !== undefined) fields[key] = { stringValue: value };
  }
  return { fields };
}

/** `requestId`: Envoy's x-request-id, which the denial body carries so a user can quote it. */
export function toCheckResponse(d: Decision, requestId?: string): CheckAnswer {
  if (d.allow) {
    return {
      status: { code: RpcCode.OK },
      okResponse: {
        headers: headerOptions(d.upstreamHeaders),
        headersToRemove: d.removeHeaders,
        responseHeadersToAdd: headerOptions(d.responseHeaders),
      },
      dynamicMetadata: struct(publishedMetadata(d)),
    };
  }
  return {
    status: { code: RPC_FOR_STATUS[d.status] ?? RpcCode.PERMISSION_DENIED, message: d.message },
    deniedResponse: {
      status: { code: d.status },
      headers: headerOptions({ ...d.headers, 'content-type': 'application/json', 'cache-control': 'no-store' }),
      body: JSON.stringify({ error: d.error, message: d.message, ...(requestId ? { request_id: requestId } : {}) } satisfies ErrorBody),
    },
    dynamicMetadata: struct(publishedMetadata(d)),
  };
}

export interface CheckMetrics {
  checks: Counter<'outcome' | 'status'>;
  latency: Histogram<'status'>;
}

export function createCheckMetrics(registry: Registry): CheckMetrics {
  return {
    checks: new Counter({
      name: 'tollgate_authz_checks_total',
      help: 'ext_authz Checks by outcome and resulting HTTP status',
      labelNames: ['outcome', 'status'],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'tollgate_authz_check_duration_seconds',
      help: 'Time to decide a Check, from request to response',
      labelNames: ['status'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers: [registry],
    }),
  };
}

export interface AuthorizationHandlers {
  Check(call: Pick<UnaryCall<CheckRequestFields>, 'request'>, callback: UnaryCallback<CheckAnswer>): void;
}

/** envoy.service.auth.v3.Authorization, backed by the Checker. */
export function authorizationHandlers(
  checker: Checker,
  metrics: CheckMetrics,
  logger: Logger,
  /** Unauthenticated refusals per client address; undefined: not limited. */
  refusals?: RefusalLimiter,
): AuthorizationHandlers {
  return {
    Check(call, callback) {
      const started = process.hrtime.bigint();
      // decodeCheckRequest, the method's decoder, reads only these fields.
      const request = call.request;
      if (!request.method || !request.path) {
        callback({
          code: GrpcStatus.INVALID_ARGUMENT,
          details: 'CheckRequest must carry attributes.request.http with method and path',
        });
        return;
      }
      const headers = request.headers;
      // The connection's peer as Envoy saw it (use_remote_address: true), never X-Forwarded-For.
      const bucket = refusals && refusalBucketOf(request.sourceAddress);
      // Reserved before the lookup, refunded unless the answer is a refusal (docs/reliability.md).
      const retryAfterS = bucket ? refusals!.reserve(bucket) : 0;
      const reserved = bucket !== undefined && retryAfterS === 0;
      checker
        .check({ method: request.method, path: request.path, headers, ...(retryAfterS > 0 && { cacheOnly: true }) })
        .then((checked) => {
          let decision = checked;
          const refused = !decision.allow && decision.status === 401;
          if (reserved && !refused) refusals!.refund(bucket);
          if (refused && retryAfterS > 0) decision = tooManyFailedAttempts(retryAfterS);
          const status = decision.allow ? 200 : decision.status;
          metrics.checks.inc({ outcome: decision.outcome, status: String(status) });
          metrics.latency.observe({ status: String(status) }, Number(process.hrtime.bigint() - started) / 1e9);
          if (!decision.allow) {
            logger.info(
              { outcome: decision.outcome, status, method: request.method, path: request.path.split('?')[0], requestId: headers['x-request-id'] },
              'request denied',
            );
          }
          callback(null, toCheckResponse(decision, headers['x-request-id']));
        })
        .catch((err: Error) => {
          if (reserved) refusals!.refund(bucket);
          metrics.checks.inc({ outcome: 'error', status: '500' });
          logger.error({ err: err.message }, 'check failed');
          callback({ code: GrpcStatus.INTERNAL, details: 'internal error while checking the request' });
        });
    },
  };
}

export const CHECK_METHOD_PATH = `/${AUTHORIZATION_SERVICE}/Check`;

/** The Check method for H2GrpcServer: the hand-written decoder and encoder around the handler. */
export function checkMethod(handlers: AuthorizationHandlers): UnaryMethod<CheckRequestFields, CheckAnswer> {
  return {
    decode: decodeCheckRequest,
    encode: encodeCheckResponse,
    handle: (call, callback) => handlers.Check(call, callback),
  };
}
