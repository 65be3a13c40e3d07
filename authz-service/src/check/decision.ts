import { CHECK_METADATA, type CheckMetadata, type CheckVerdict, type ErrorCode } from '@tollgate/common';

import { unauthorizedChallenge } from '../domain/bearer-challenge.js';

/** What a Check decided, independent of gRPC: the server turns it into a CheckResponse. */
export type DenyStatus = 400 | 401 | 402 | 403 | 429 | 503;

export interface Allow {
  allow: true;
  /** Set on the upstream request (overwriting anything a client sent). */
  upstreamHeaders: Record<string, string>;
  /** Removed from the upstream request: the credential never reaches the API. */
  removeHeaders: string[];
  /** Added to the client's response (rate-limit state). */
  responseHeaders: Record<string, string>;
  /** Published as ext_authz dynamic metadata, so the access log can attribute usage. */
  metadata: CheckMetadata;
  outcome: 'allowed' | 'allowed_fail_open';
}

export interface Deny {
  allow: false;
  status: DenyStatus;
  /** Machine-readable code, the JSON body's `error`. */
  error: ErrorCode;
  message: string;
  headers: Record<string, string>;
  metadata?: CheckMetadata;
  /** Metric label and log field: why the request was denied. */
  outcome: string;
}

export type Decision = Allow | Deny;

export interface CheckInput {
  method: string;
  /** Request path as Envoy saw it (may include the query string). */
  path: string;
  /** Lower-case header names (Envoy's CheckRequest map). */
  headers: Record<string, string>;
  /**
   * The client's address is over its refusal budget (refusal-limiter.ts): an API key that is
   * not in the cache is refused without a key-store lookup, and the caller answers 429 for
   * every 401.
   */
  cacheOnly?: boolean;
}

export function deny(
  status: DenyStatus,
  /** Only a code from ERROR_CODES (common/src/error-codes.ts): add a new one there first. */
  error: ErrorCode,
  message: string,
  opts: { headers?: Record<string, string>; metadata?: CheckMetadata; outcome?: string } = {},
): Deny {
  const headers: Record<string, string> = { ...opts.headers };
  if (status === 401) headers['www-authenticate'] = unauthorizedChallenge(error);
  return { allow: false, status, error, message, headers, metadata: opts.metadata, outcome: opts.outcome ?? error };
}

/**
 * The dynamic metadata Envoy gets for a decision: the identity plus the verdict, so the access
 * log says that the gateway refused a request instead of leaving billing to guess it from the
 * status code (an upstream's own 403 is billable; ours never is). Applied to every decision at
 * the gRPC boundary, so no path through the Checker can publish an identity without it. A
 * denial without an identity (an unknown key, say) publishes the verdict and error code alone:
 * billing counts it as an unattributed refusal (UNATTRIBUTED), so the overview's 401s are all
 * the gateway's 401s.
 */
export function publishedMetadata(d: Decision): CheckMetadata {
  if (d.allow) return { ...d.metadata, [CHECK_METADATA.decision]: 'allow' satisfies CheckVerdict };
  return { ...d.metadata, [CHECK_METADATA.decision]: 'deny' satisfies CheckVerdict, [CHECK_METADATA.errorCode]: d.error };
}
