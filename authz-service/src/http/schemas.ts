import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '@tollgate/common';
import { KEY_ID_RE } from '../stores/key-store.js';
import { SERVICE_ROUTE_SCOPE } from '../domain/scopes.js';

/**
 * The management API's request and response schemas. Handlers validate with these, and
 * /openapi.json is generated from these same objects (openapi.ts), so the document cannot drift
 * from what the server accepts. Every schema a route names is registered under an id in
 * `apiSchemas`, which becomes `components.schemas` in the OpenAPI document.
 */
export const apiSchemas = z.registry<{ id: string; description?: string }>();

const named = <T extends z.ZodType>(schema: T, id: string, description?: string): T => {
  apiSchemas.add(schema, description ? { id, description } : { id });
  return schema;
};

const MAX_RATE_PER_MINUTE = 1_000_000;
const MAX_RATE_PER_DAY = 1_000_000_000;
const MAX_EXPIRY_DAYS = 3650;
const MAX_METADATA_BYTES = 8192;

const userId = z
  .string()
  .regex(/^[A-Za-z0-9._@:+-]{1,128}$/, 'user ids are 1-128 letters, digits or . _ @ : + -')
  .describe('The owner of the key, as your system names it');
const keyId = z.string().regex(KEY_ID_RE, 'key ids look like key_ followed by 20 letters or digits');

/** Scope strings, as the Check understands them (docs/authz.md): read, write, *, read:/prefix, keys:manage, service_route:/prefix, custom. */
const scope = z
  .string()
  .regex(/^[A-Za-z0-9_.:*/-]{1,128}$/, 'scopes use letters, digits and _ . : * / - (at most 128)')
  // A service_route scope without a path would grant nothing: say so rather than store it.
  .refine((s) => !(s === SERVICE_ROUTE_SCOPE || s.startsWith(`${SERVICE_ROUTE_SCOPE}:`)) || s.startsWith(`${SERVICE_ROUTE_SCOPE}:/`), {
    message: `${SERVICE_ROUTE_SCOPE} scopes name a path prefix: ${SERVICE_ROUTE_SCOPE}:/prefix/`,
  });
const scopes = z
  .array(scope)
  .max(64)
  .refine((list) => new Set(list).size === list.length, 'scopes must not repeat');
const permissionSetName = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'permission set names are lower-case letters, digits and _');
const ratePerMinute = z.number().int().min(1).max(MAX_RATE_PER_MINUTE).nullable();
const ratePerDay = z.number().int().min(1).max(MAX_RATE_PER_DAY).nullable();
const futureInstant = z.iso.datetime({ offset: true }).describe('RFC 3339 date-time; must be in the future');
const metadata = z
  .record(z.string().max(64), z.unknown())
  .refine((m) => Buffer.byteLength(JSON.stringify(m)) <= MAX_METADATA_BYTES, `metadata must be at most ${MAX_METADATA_BYTES} bytes of JSON`)
  .describe('Free-form JSON object kept with the key; metadata.byok is read by the gateway and only an admin token sets it');
const stripeCustomerId = z
  .string()
  .regex(/^cus_[A-Za-z0-9]{1,64}$/, 'Stripe customer ids look like cus_…')
  .nullable();
const name = z.string().trim().min(1).max(200);
const monthlyQuota = z
  .number()
  .int()
  .min(1)
  .max(Number.MAX_SAFE_INTEGER)
  .nullable()
  .describe('Cost units per calendar month (UTC); null: no quota. An owner key may lower it, never raise it');
const description = z.string().max(2000).nullable();

export const CreateKeyBody = named(
  z.strictObject({
    user_id: userId,
    name,
    description: description.optional(),
    rate_limit_per_minute: ratePerMinute.optional().describe('Requests per minute; null or absent: DEFAULT_RATE_LIMIT_PER_MINUTE, else unlimited'),
    rate_limit_per_day: ratePerDay.optional().describe('Requests per day; null or absent: DEFAULT_RATE_LIMIT_PER_DAY, else unlimited'),
    monthly_quota: monthlyQuota.optional(),
    scopes: scopes.optional(),
    permission_set: permissionSetName.nullable().optional(),
    expires_at: futureInstant.nullable().optional(),
    expires_in_days: z.number().int().min(1).max(MAX_EXPIRY_DAYS).optional(),
    metadata: metadata.optional(),
    stripe_customer_id: stripeCustomerId.optional(),
  }),
  'CreateKeyRequest',
);
export type CreateKeyBody = z.output<typeof CreateKeyBody>;

export const UpdateKeyBody = named(
  z
    .strictObject({
      name: name.optional(),
      description: description.optional(),
      rate_limit_per_minute: ratePerMinute.optional(),
      rate_limit_per_day: ratePerDay.optional(),
      monthly_quota: monthlyQuota.optional(),
      scopes: scopes.optional(),
      permission_set: permissionSetName.nullable().optional(),
      metadata: metadata.optional(),
      stripe_customer_id: stripeCustomerId.optional(),
      is_active: z.boolean().optional().describe('false suspends the key (reversible); revoke is permanent'),
    })
    .refine((b) => Object.values(b).some((v) => v !== undefined), 'give at least one field to change'),
  'UpdateKeyRequest',
);
export type UpdateKeyBody = z.output<typeof UpdateKeyBody>;

export const RevokeKeyBody = named(z.strictObject({ reason: z.string().trim().min(1).max(500).optional() }), 'RevokeKeyRequest');

export const ExtendKeyBody = named(
  z
    .strictObject({
      expires_at: futureInstant.nullable().optional().describe('New expiry; null: never expires'),
      days: z.number().int().min(1).max(MAX_EXPIRY_DAYS).optional().describe('Days added to the current expiry (or to now, if later)'),
    })
    .refine((b) => (b.expires_at !== undefined) !== (b.days !== undefined), 'give exactly one of expires_at or days'),
  'ExtendKeyRequest',
);

export const RotateKeyBody = named(
  z.strictObject({
    grace_seconds: z
      .number()
      .int()
      .min(0)
      .max(30 * 86_400)
      .optional()
      .describe('How long the old secret keeps working; default ROTATION_GRACE_SECONDS'),
  }),
  'RotateKeyRequest',
);

export const KeyIdParams = z.strictObject({ id: keyId });
export const UserIdParams = z.strictObject({ user_id: userId });

const booleanQuery = z.enum(['true', 'false']).transform((v) => v === 'true');
const listQueryFields = {
  active: booleanQuery.optional().describe('true: only active keys; false: only revoked, suspended or expired ones'),
  expiring_within_days: z.coerce.number().int().min(1).max(MAX_EXPIRY_DAYS).optional().describe('Only keys that expire within this many days'),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(200).optional().describe('next_cursor of the previous page'),
};
export const UserKeysQuery = z.strictObject(listQueryFields);
export const AllKeysQuery = z.strictObject({ user_id: userId.optional(), ...listQueryFields });

const instant = z.iso.datetime({ offset: true });

export const KeyRecord = named(
  z.object({
    object: z.literal('key'),
    id: keyId,
    user_id: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    key_prefix: z.string().describe('The first characters of the key, to tell keys apart; not a secret'),
    scopes: z.array(z.string()),
    permission_set: z.string().nullable(),
    effective_scopes: z.array(z.string()).describe('Scopes the gateway grants: the permission set’s plus the key’s own'),
    rate_limit_per_minute: z.number().int().nullable(),
    rate_limit_per_day: z.number().int().nullable(),
    monthly_quota: z.number().int().nullable(),
    expires_at: instant.nullable(),
    is_active: z.boolean(),
    status: z.enum(['active', 'revoked', 'expired', 'inactive']),
    revoked_at: instant.nullable(),
    revoked_reason: z.string().nullable(),
    last_used_at: instant.nullable(),
    usage_count: z.number().int(),
    metadata: z.record(z.string(), z.unknown()),
    stripe_customer_id: z.string().nullable(),
    previous_key_expires_at: instant.nullable().describe('After a rotation: until when the previous secret still works'),
    created_by: z.string().nullable(),
    created_at: instant,
    updated_at: instant,
  }),
  'Key',
  'An API key. Never carries the secret or its hash.',
);
export type KeyRecord = z.output<typeof KeyRecord>;

export const KeyWithSecret = named(
  KeyRecord.extend({
    key: z.string().optional().describe('The plaintext key: returned by create and rotate only, once. Absent on an idempotent replay.'),
  }),
  'KeyWithSecret',
);

export const KeyList = named(
  z.object({
    object: z.literal('list'),
    data: z.array(KeyRecord),
    has_more: z.boolean(),
    next_cursor: z.string().nullable(),
  }),
  'KeyList',
);

export const DeletedKey = named(z.object({ id: keyId, object: z.literal('key'), deleted: z.literal(true) }), 'DeletedKey');

export const PermissionSetList = named(
  z.object({
    object: z.literal('list'),
    default: z.string(),
    data: z.array(z.object({ name: z.string(), scopes: z.array(z.string()), builtin: z.boolean() })),
  }),
  'PermissionSetList',
);

export const ErrorResponse = named(
  z.object({
    error: z
      .enum(Object.entries(ERROR_CODES).flatMap(([code, info]) => ((info.surfaces as readonly string[]).includes('management') ? [code as ErrorCode] : [])))
      .describe('A code from docs/errors.md'),
    message: z.string(),
    details: z.unknown().optional(),
    field: z.string().optional().describe('With field_not_allowed: the field a keys:manage key may not set as asked'),
    request_id: z.string().describe("This request's id, also the x-request-id response header: quote it to an operator"),
  }),
  'Error',
  'Every error: a machine-readable code, a sentence for people, and sometimes details (e.g. which fields are wrong).',
);

// --- Service tokens (seed 001) -------------------------------------------------------------

const projectOrService = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, _ and -, at most 63');
const routePrefix = z.string().regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,255}$/, 'a path prefix starting with /');

export const CreateTokenBody = named(
  z.strictObject({
    project: projectOrService,
    service: projectOrService,
    description: description.optional(),
    expires_in_days: z.number().int().min(1).max(MAX_EXPIRY_DAYS).default(90),
    routes: z.array(routePrefix).min(1).max(32).optional().describe('Path prefixes the token may call; default /<project>/'),
  }),
  'CreateTokenRequest',
);
export const TokenJtiParams = z.strictObject({ jti: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'token ids are UUIDs') });
export const TokenListQuery = z.strictObject({
  active: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
  unused_days: z.coerce.number().int().min(0).max(3650).optional().describe('Only tokens not used for this many days (never used counts)'),
  project: projectOrService.optional(),
});
export const RevokeTokenBody = named(z.strictObject({ reason: z.string().max(500).optional() }), 'RevokeTokenRequest');

export const TokenRecord = named(
  z.object({
    object: z.literal('service_token'),
    jti: z.string(),
    project: z.string(),
    service: z.string(),
    description: z.string().nullable(),
    routes: z.array(z.string()),
    kid: z.string(),
    status: z.enum(['active', 'revoked', 'expired']),
    created_at: instant,
    created_by: z.string().nullable(),
    expires_at: instant,
    last_used_at: instant.nullable(),
    revoked_at: instant.nullable(),
    revoked_by: z.string().nullable(),
    revoked_reason: z.string().nullable(),
  }),
  'ServiceToken',
  'A service token’s registry entry. Never carries the token itself.',
);
export const TokenWithSecret = named(
  TokenRecord.extend({ token: z.string().describe('The signed token: returned by create only, once') }),
  'ServiceTokenWithSecret',
);
export const TokenList = named(z.object({ object: z.literal('list'), data: z.array(TokenRecord) }), 'ServiceTokenList');

// --- Provider-key vault (seeds 000, 002) -------------------------------------------------

export const ProviderParams = z.strictObject({
  user_id: userId,
  provider: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/, 'provider names are letters, digits, _ or -, at most 32')
    .transform((p) => p.toLowerCase()),
});
export const VaultUserParams = z.strictObject({ user_id: userId });
export const SetProviderKeyBody = named(
  z.strictObject({ secret: z.string().min(1).max(4096).describe('The provider credential; write-only, never returned') }),
  'SetProviderKeyRequest',
);
export const ProviderKeyRecord = named(
  z.object({
    object: z.literal('provider_key'),
    user_id: z.string(),
    provider: z.string(),
    fingerprint: z.string().describe('First 12 hex digits of SHA-256 of the secret, to tell secrets apart'),
    master_key_id: z.string(),
    created_at: instant,
    updated_at: instant,
  }),
  'ProviderKey',
  'A stored provider credential’s metadata. The secret itself is never returned.',
);
export const ProviderKeyList = named(z.object({ object: z.literal('list'), data: z.array(ProviderKeyRecord) }), 'ProviderKeyList');
export const DeletedProviderKey = named(
  z.object({ object: z.literal('provider_key'), user_id: z.string(), provider: z.string(), deleted: z.literal(true) }),
  'DeletedProviderKey',
);
export const RewrapResult = named(z.object({ rewrapped: z.number().int(), failed: z.number().int(), master_key_id: z.string() }), 'RewrapResult');

// --- Usage (issue: billing) ---------------------------------------------------------------

const usageTime = z
  .string()
  .regex(/^(\d{1,12}|\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?)$/, 'an ISO 8601 time or Unix seconds')
  .describe('ISO 8601 time or Unix seconds; rounded to whole UTC hours');
export const UsageQuery = z.strictObject({ from: usageTime.optional(), to: usageTime.optional() });
export const KeyUsageQuery = UsageQuery.extend({ granularity: z.enum(['hour', 'day']).default('day') });
const usageTotals = {
  total_requests: z.number().int().describe('Every logged request with this identity, the gateway’s own refusals included'),
  billable_requests: z.number().int().describe('What billing charges: never a request the gateway refused'),
  refused_requests: z.number().int().describe('Requests the gateway itself refused (scope, provider credential, rate limit): recorded, never billable'),
  request_bytes: z.number(),
  response_bytes: z.number(),
  avg_duration_ms: z.number(),
};
export const UserUsageRecord = named(
  z.object({
    user_id: z.string(),
    from: instant,
    to: instant,
    ...usageTotals,
    keys: z.array(z.object({ key_id: z.string(), credential: z.string(), last_request_at: instant.nullable(), ...usageTotals })),
  }),
  'UserUsage',
  'Requests in the range, in total and per key (what billing will charge: billable_requests).',
);
const usageSeries = {
  from: instant,
  to: instant,
  granularity: z.enum(['hour', 'day']),
  last_request_at: instant.nullable(),
  ...usageTotals,
  buckets: z.array(z.object({ start: instant, ...usageTotals })),
};
export const KeyUsageRecord = named(
  z.object({
    key_id: z.string(),
    user_id: z.string().nullable(),
    credential: z.string().nullable(),
    quota: z
      .object({ monthly_quota: z.number().int(), used: z.number().int(), remaining: z.number().int(), resets_at: instant })
      .nullable()
      .describe('This calendar month (UTC), in cost units; null: the key has no monthly quota'),
    ...usageSeries,
  }),
  'KeyUsage',
);
export const TokenUsageRecord = named(
  z.object({
    jti: z.string(),
    credential: z.literal('service_token'),
    project: z.string().nullable().describe('As recorded with the requests (null without any in the range)'),
    service: z.string().nullable(),
    ...usageSeries,
  }),
  'TokenUsage',
  'A service token’s requests in the range, per bucket. Tokens have no Stripe customer: their billable requests are never sent to Stripe.',
);
export const BillingStatusQuery = z.strictObject({
  stripe_customer_id: z
    .string()
    .regex(/^cus_[A-Za-z0-9]{1,64}$/)
    .optional(),
});
export const BillingStatusRecord = named(
  z.object({
    pending_events: z.number().int(),
    oldest_pending_at: instant.nullable(),
    parked_events: z.array(
      z.object({
        identifier: z.string(),
        stripe_customer_id: z.string(),
        value: z.number(),
        window_start: instant,
        status: z.number().int().nullable(),
        error: z.string().nullable(),
      }),
    ),
  }),
  'BillingStatus',
  'Meter events Stripe has not accepted yet, and those it refused (parked, with Stripe’s error).',
);
