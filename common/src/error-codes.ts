/**
 * Every `error` code Tollgate answers with: the gateway's denials (authz-service's Check) and the
 * management API's errors. The list is closed: `deny()` and `HttpError` take only an
 * `ErrorCode`, so a new code does not compile until it is added here, with what it means and
 * what to do about it. docs/errors.md is this list as a table (common/test/error-codes.unit.test.ts
 * fails when the two disagree).
 */

/**
 * Where a code can come from: the gateway (Envoy's answer for a Check denial), the management
 * API, or Envoy itself (its own refusals, mapped to these codes by envoy/envoy.yaml's
 * `local_reply_config`).
 */
export type ErrorSurface = 'gateway' | 'management' | 'envoy';

export interface ErrorCodeInfo {
  /** Every HTTP status the code is answered with. */
  readonly status: readonly number[];
  readonly surfaces: readonly ErrorSurface[];
  /** What happened, for the person reading the error. */
  readonly meaning: string;
  /** What they can do about it. */
  readonly action: string;
}

export const ERROR_CODES = {
  // --- Credentials -----------------------------------------------------------------------------
  missing_credential: {
    status: [401],
    surfaces: ['gateway', 'management'],
    meaning: 'The request carried no credential (no `Authorization: Bearer …` or `X-API-Key`).',
    action: 'Send an API key (a service token, or an admin token for the management API).',
  },
  invalid_credential: {
    status: [401],
    surfaces: ['gateway', 'management'],
    meaning:
      'The credential header is malformed: `Authorization` is not `Bearer <credential>`, `X-API-Key` holds more than one key, or the two disagree (management API: also a credential that is neither an admin token nor a Tollgate key).',
    action: 'Send one credential, as `Authorization: Bearer <key>` or `X-API-Key: <key>`.',
  },
  invalid_api_key: {
    status: [401],
    surfaces: ['gateway', 'management'],
    meaning: 'The API key is malformed, fails its checksum, is unknown, or was rotated and its grace period has ended.',
    action: 'Check the key for typos; after a rotation use the new key.',
  },
  key_revoked: {
    status: [401, 409],
    surfaces: ['gateway', 'management'],
    meaning: 'The API key has been revoked (401 when calling with it; 409 when updating, extending or rotating it).',
    action: 'Revocation is permanent: create a new key.',
  },
  key_expired: {
    status: [401],
    surfaces: ['gateway', 'management'],
    meaning: 'The API key has passed its expiry.',
    action: 'Extend the key (`POST /api/keys/:id/extend`) or create a new one.',
  },
  key_inactive: {
    status: [401],
    surfaces: ['gateway', 'management'],
    meaning: 'The API key is disabled.',
    action: 'Ask the key’s owner or an operator to re-enable it (`is_active: true`).',
  },
  invalid_token: {
    status: [401],
    surfaces: ['gateway'],
    meaning: 'The service token is malformed, unknown, signed with another secret, or service tokens are off on this gateway.',
    action: 'Use a token issued by this gateway (`POST /api/tokens`).',
  },
  token_expired: {
    status: [401],
    surfaces: ['gateway'],
    meaning: 'The service token has expired.',
    action: 'Issue a new service token.',
  },
  token_revoked: {
    status: [401],
    surfaces: ['gateway'],
    meaning: 'The service token has been revoked or deactivated.',
    action: 'Issue a new service token.',
  },
  // --- Permissions -----------------------------------------------------------------------------
  insufficient_scope: {
    status: [403],
    surfaces: ['gateway', 'management'],
    meaning: 'The key lacks the scope this method and path (or the management API, `keys:manage`) need; `WWW-Authenticate` names it.',
    action: 'Use a key with that scope, or have its scopes changed.',
  },
  service_token_required: {
    status: [403],
    surfaces: ['gateway'],
    meaning: 'The path is for service tokens only, and the API key lacks the `service_route:<prefix>` scope that opens it.',
    action: 'Call it with a service token, or ask an operator for the scope.',
  },
  route_not_allowed: {
    status: [403],
    surfaces: ['gateway'],
    meaning: 'The service token’s claims do not allow this path.',
    action: 'Use a token issued for this route (its project and service).',
  },
  invalid_credentials: {
    status: [401],
    surfaces: ['management'],
    meaning: 'Console sign-in (`POST /api/session`): the token is not an admin token or an active API key with the `keys:manage` scope.',
    action: 'Sign in with an admin token or a `keys:manage` key; repeated failures from one address are slowed down (429).',
  },
  invalid_session: {
    status: [401],
    surfaces: ['management'],
    meaning: 'The console session cookie is missing, unknown, past its idle or absolute lifetime, signed out, or its owner key is no longer active.',
    action: 'Sign in again (`POST /api/session`).',
  },
  csrf_failed: {
    status: [403],
    surfaces: ['management'],
    meaning: 'A POST, PUT, PATCH or DELETE authenticated by the session cookie lacked the session’s `X-CSRF-Token`, or it was wrong.',
    action: 'Send `X-CSRF-Token: <csrf_token>` from `POST` or `GET /api/session`.',
  },
  forbidden: {
    status: [403],
    surfaces: ['management'],
    meaning: 'A `keys:manage` key acted for another user, or called an admin-only route.',
    action: 'Act only on your own user’s keys, or use an admin token.',
  },
  scope_escalation: {
    status: [403],
    surfaces: ['management'],
    meaning: 'A `keys:manage` key tried to grant scopes it does not hold itself; `details.scopes` lists them.',
    action: 'Grant only scopes your key holds, or use an admin token.',
  },
  field_not_allowed: {
    status: [403],
    surfaces: ['management'],
    meaning: 'A `keys:manage` key tried to set a field only an admin may set as asked; `field` names it.',
    action: 'Leave the field out, or use an admin token.',
  },
  // --- Requests --------------------------------------------------------------------------------
  invalid_path: {
    status: [400],
    surfaces: ['gateway'],
    meaning: 'The path carries `;` parameters (raw or `%3B`), which the gateway refuses whatever the credential.',
    action: 'Remove the `;` parameters from the path.',
  },
  invalid_request: {
    status: [400],
    surfaces: ['management'],
    meaning: 'The request does not match the documented schema (field, type, range, id, query or cursor); `details` lists `{field, code, message}`.',
    action: 'Fix the fields `details` names; see /openapi.json.',
  },
  invalid_json: {
    status: [400],
    surfaces: ['management'],
    meaning: 'The request body is not valid JSON.',
    action: 'Send a JSON body.',
  },
  unsupported_media_type: {
    status: [415],
    surfaces: ['management'],
    meaning: 'The request body is not `application/json`.',
    action: 'Send the body with `Content-Type: application/json`.',
  },
  payload_too_large: {
    status: [413],
    surfaces: ['management', 'envoy'],
    meaning: 'The request body is over the limit: 64 KiB for the management API, 10 MiB through the gateway (`max_request_bytes` in envoy/envoy.yaml).',
    action: 'Send a smaller body; an operator can raise the gateway limit for an upload route.',
  },
  headers_too_large: {
    status: [431],
    surfaces: ['envoy'],
    meaning: 'The request headers are over 60 KiB (`max_request_headers_kb`); refused while reading them, so the answer has no request id.',
    action: 'Send fewer or smaller headers.',
  },
  malformed_request: {
    status: [400],
    surfaces: ['envoy'],
    meaning: 'Envoy refused the request as HTTP it will not forward; the message names why (an underscore in a header name, an escaped slash in the path, …).',
    action: 'Fix the request: header names take hyphens, paths plain slashes.',
  },
  not_found: {
    status: [404],
    surfaces: ['management'],
    meaning: 'No such key, token or user record (another user’s key looks the same), or no such route.',
    action: 'Check the id and the path.',
  },
  method_not_allowed: {
    status: [405],
    surfaces: ['management'],
    meaning: 'The path exists but not with this method; the `Allow` header lists the methods it has.',
    action: 'Use one of the methods in `Allow` (see /openapi.json).',
  },
  unknown_permission_set: {
    status: [422],
    surfaces: ['management'],
    meaning: 'The permission set named is not configured; `details.known` lists those that are.',
    action: 'Use one of the known sets (`GET /api/permission-sets`).',
  },
  idempotency_key_reused: {
    status: [422],
    surfaces: ['management'],
    meaning: 'This Idempotency-Key was already used with a different request.',
    action: 'Use a new Idempotency-Key for a new request.',
  },
  idempotency_key_in_use: {
    status: [409],
    surfaces: ['management'],
    meaning: 'A request with this Idempotency-Key is still in progress.',
    action: 'Retry shortly with the same key; you will get its answer.',
  },
  vault_disabled: {
    status: [409],
    surfaces: ['management'],
    meaning: 'The provider-key vault is off on this deployment.',
    action: 'An operator sets `VAULT_MASTER_KEYS` to turn it on.',
  },
  tokens_disabled: {
    status: [409],
    surfaces: ['management'],
    meaning: 'Service tokens are off on this deployment.',
    action: 'An operator configures service tokens (docs/service-tokens.md).',
  },
  // --- Provider credentials --------------------------------------------------------------------
  invalid_provider: {
    status: [400],
    surfaces: ['gateway'],
    meaning: '`X-Provider` is not a provider name (letters, digits, `_` or `-`, up to 32 characters).',
    action: 'Send a valid provider name.',
  },
  provider_required: {
    status: [400],
    surfaces: ['gateway'],
    meaning: 'This route needs a provider and the request named none.',
    action: 'Send `X-Provider`.',
  },
  provider_credential_missing: {
    status: [400],
    surfaces: ['gateway'],
    meaning: 'No credential is stored for this user and provider, and none was sent.',
    action: 'Store one (`PUT /api/users/<user_id>/provider-keys/<provider>`) or send `X-Provider-Auth`.',
  },
  byok_not_allowed: {
    status: [403],
    surfaces: ['gateway'],
    meaning: 'The key may not bring its own provider credential (`X-Provider-Auth`).',
    action: 'Store the credential in the vault instead.',
  },
  provider_credential_unreadable: {
    status: [503],
    surfaces: ['gateway'],
    meaning:
      'The stored provider credential cannot be decrypted, or the provider rejected every one of the operator’s credentials for it (docs/vault.md, "Rejected operator credentials").',
    action: 'Ask an operator to check the vault’s master keys, or to rotate the rejected credentials; quote the request id.',
  },
  webhook_target_refused: {
    status: [400],
    surfaces: ['management'],
    meaning:
      'A webhook endpoint URL that deliveries may not go to: not http(s), carrying a user name or password, or pointing at a loopback, private, link-local or other non-public address; nothing was changed.',
    action: 'Register a public http(s) URL; for a local receiver an operator sets `WEBHOOK_ALLOW_PRIVATE_TARGETS=true`.',
  },
  invalid_stripe_signature: {
    status: [400],
    surfaces: ['management'],
    meaning:
      'A Stripe webhook delivery whose `Stripe-Signature` does not verify with any STRIPE_WEBHOOK_SECRET (or is older than five minutes); nothing was applied.',
    action: 'Set STRIPE_WEBHOOK_SECRET to the endpoint’s signing secret; Stripe retries the delivery.',
  },
  // --- Limits and outages ----------------------------------------------------------------------
  billing_suspended: {
    status: [402],
    surfaces: ['gateway'],
    meaning: 'The key’s Stripe subscription is canceled, unpaid or paused, so its keys are suspended (docs/billing.md).',
    action: 'Pay the open invoice or renew the subscription; the key works again within a second of Stripe reporting it.',
  },
  rate_limited: {
    status: [429],
    surfaces: ['gateway'],
    meaning: 'The key is over its per-minute or per-day limit.',
    action: 'Retry after `Retry-After` seconds; the rate-limit headers say where you stand.',
  },
  quota_exceeded: {
    status: [429],
    surfaces: ['gateway'],
    meaning: 'The key has used its monthly quota (cost units per calendar month, UTC).',
    action: 'Wait for the next month (`Retry-After`), or ask an operator to raise the quota.',
  },
  too_many_failed_attempts: {
    status: [429],
    surfaces: ['gateway', 'management'],
    meaning:
      'Too many requests without a valid credential came from this client address; until its budget refills, only keys this replica already has cached pass (management API: too many failed console sign-ins this minute).',
    action:
      'Fix the credential the client sends, then retry after `Retry-After` seconds (UNAUTHENTICATED_REFUSALS_PER_MINUTE_PER_ADDRESS sets the budget; SESSION_SIGNIN_FAILURES_PER_MINUTE for sign-ins).',
  },
  unavailable: {
    status: [503],
    surfaces: ['gateway'],
    meaning: 'A store the Check needs (keys, tokens, rate limits or the vault) is unreachable.',
    action: 'Retry after `Retry-After` seconds; if it lasts, quote the request id to an operator.',
  },
  authorizer_unavailable: {
    status: [503],
    surfaces: ['envoy'],
    meaning: 'Envoy got no answer from authz-service within the Check timeout (0.5 s); the request was not let through.',
    action: 'Retry after `Retry-After` seconds; if it lasts, an operator checks authz-service (docs/operations.md).',
  },
  upstream_unavailable: {
    status: [503],
    surfaces: ['envoy'],
    meaning: 'The API behind the gateway refused or reset the connection, or has no healthy instance.',
    action: 'Retry shortly; if it lasts, an operator checks the upstream.',
  },
  upstream_timeout: {
    status: [504],
    surfaces: ['envoy'],
    meaning: 'The API behind the gateway did not answer within its route timeout (30 s by default).',
    action: 'Retry; if it lasts, an operator checks the upstream or raises the route timeout.',
  },
  usage_unavailable: {
    status: [503],
    surfaces: ['management'],
    meaning: 'Usage is not recorded in this database yet.',
    action: 'An operator starts billing-sidecar against the database.',
  },
  internal_error: {
    status: [500],
    surfaces: ['management'],
    meaning: 'Something went wrong on the server (a bug or an unreachable database); it is logged without the request body.',
    action: 'Retry; if it lasts, quote the request id to an operator.',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

/** A code Tollgate may answer with. Adding one means adding it to `ERROR_CODES` (and docs/errors.md). */
export type ErrorCode = keyof typeof ERROR_CODES;
