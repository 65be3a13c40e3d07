/**
 * Fields of the ext_authz dynamic metadata that carry authz-service's verdict to the access
 * logs. authz-service writes them, billing-sidecar reads them (from the gRPC stream, and from
 * the JSON file log whose format in envoy/envoy.yaml names the same fields), so they are
 * spelled once, here.
 */
export const CHECK_METADATA = {
  /** `allow` or `deny`: a request the gateway refused is never billable, whatever its status. */
  decision: 'decision',
  /** On a denial: the JSON body's `error` (`insufficient_scope`, `rate_limited`, …). */
  errorCode: 'error_code',
  /** Service tokens: the token's project and service (the token id is `token_id`). */
  project: 'project',
  service: 'service',
} as const;

export type CheckVerdict = 'allow' | 'deny';
