/**
 * The contract between authz-service and billing-sidecar: the ext_authz dynamic metadata that
 * carries the Check's identity and verdict to the access logs. authz-service writes it,
 * billing-sidecar reads it (from the gRPC stream, and from the JSON file log whose format in
 * envoy/envoy.yaml names the same fields; billing.unit.test.ts holds the three together), so
 * every field is spelled once, here.
 */
export const CHECK_METADATA = {
  /** Which kind of credential the request carried: a `CredentialKind`. */
  credential: 'credential',
  /** API keys: the key's owner. */
  userId: 'user_id',
  /** API keys: the key's id. */
  keyId: 'key_id',
  /** Service tokens: the token's id (its `jti`), which billing records as the key id. */
  tokenId: 'token_id',
  /** API keys with a Stripe customer: whom billing charges. */
  stripeCustomerId: 'stripe_customer_id',
  /** Service tokens: the token's project and service. */
  project: 'project',
  service: 'service',
  /** `allow` or `deny`: a request the gateway refused is never billable, whatever its status. */
  decision: 'decision',
  /** API keys: the request's weight (ROUTE_COSTS, 1 by default): the cost units usage records and Stripe bills. */
  cost: 'cost',
  /** On a denial: the JSON body's `error` (`insufficient_scope`, `rate_limited`, …). */
  errorCode: 'error_code',
  /** Provider routes: the provider the request was for (docs/vault.md). */
  provider: 'provider',
  /** Provider routes: whose credential the upstream got, a `CredentialSource`. */
  credentialSource: 'credential_source',
  /** `operator` source: which operator credential (its id, never the secret). */
  operatorCredentialId: 'operator_credential_id',
} as const;

export type CheckMetadataField = (typeof CHECK_METADATA)[keyof typeof CHECK_METADATA];

/** The metadata of one decision: absent fields are not published. */
export type CheckMetadata = Partial<Record<CheckMetadataField, string>>;

/** Envoy files ext_authz's dynamic metadata under the filter's own name. */
export const EXT_AUTHZ_METADATA_NAMESPACE = 'envoy.filters.http.ext_authz';

/** The `credential` field's values. */
export type CredentialKind = 'api_key' | 'service_token';

/**
 * A refusal with no credential to attribute it to (no credential, an unknown or malformed key,
 * an unverifiable token, a client over its refusal budget): authz-service publishes only the
 * verdict and the error code, and billing records the request under this credential and an
 * empty key id, so the all-traffic charts count it and no key's or user's figures do.
 */
export const UNATTRIBUTED = { credential: 'none', keyId: '' } as const;

/** What a usage row's `credential` holds: the credential kind, or none for an unattributed refusal. */
export type UsageCredential = CredentialKind | typeof UNATTRIBUTED.credential;

export type CheckVerdict = 'allow' | 'deny';

/** The `credential_source` field's values: the client's own key, the user's vault, or the operator's. */
export type CredentialSource = 'byok' | 'user' | 'operator';
