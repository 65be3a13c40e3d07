import type { ErrorCode } from '@tollgate/common';

/**
 * The RFC 6750 §3 `WWW-Authenticate` challenges that the gateway (decision.ts, checker.ts) and
 * the management API (http/auth.ts) answer with, built in one place so the two cannot drift.
 */
export type BearerChallenge = { error?: undefined } | { error: 'invalid_token' } | { error: 'insufficient_scope'; scope: string };

const REALM = 'Bearer realm="tollgate"';

export function bearerChallenge(challenge: BearerChallenge = {}): string {
  if (challenge.error === undefined) return REALM;
  if (challenge.error === 'invalid_token') return `${REALM}, error="invalid_token"`;
  return `${REALM}, error="insufficient_scope", scope="${challenge.scope}"`;
}

/** A 401's challenge: RFC 6750 §3.1 gives no error code when the request carried no credential at all. */
export function unauthorizedChallenge(error: ErrorCode): string {
  return bearerChallenge(error === 'missing_credential' ? {} : { error: 'invalid_token' });
}
