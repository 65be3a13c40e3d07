import { z } from 'zod';
import { SERVICE_ROUTE_SCOPE } from '../../domain/scopes.js';
import { description, instant, keyId, MAX_EXPIRY_DAYS, named, userId } from './common.js';

const MAX_RATE_PER_MINUTE = 1_000_000;
const MAX_RATE_PER_DAY = 1_000_000_000;
const MAX_METADATA_BYTES = 8192;

/** Scope strings, as the Check understands them (docs/authz.md): read, write, *, read:/prefix, keys:manage, service_route:/prefix, custom. */
const scope = z
  .string()
  .regex(/^[A-Za-z0-9_.:*/-]{1,128}$/, 'scopes use letters, digits and _ . : * / - (at most 128)')
  // A service_route scope without a path would grant nothing: say so rather than store it.
  .refine((s) => !(s === SERVICE_ROUTE_SCOPE || s.startsWith(`${SERVICE_ROUTE_SCOPE}:`)) || s.startsWith(`${SERVICE_ROUTE_SCOPE}:/`), {
    message: `${SERVICE_ROUTE_SCOPE} scopes name a path prefix: ${SERVICE_ROUTE_SCOPE}:/prefix/`,
  })
  .meta({ anyOf: [{ not: { pattern: `^${SERVICE_ROUTE_SCOPE}(:|$)` } }, { pattern: `^${SERVICE_ROUTE_SCOPE}:/` }] });
const scopes = z
  .array(scope)
  .max(64)
  .refine((list) => new Set(list).size === list.length, 'scopes must not repeat')
  .meta({ uniqueItems: true });
const permissionSetName = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'permission set names are lower-case letters, digits and _');
const ratePerMinute = z.number().int().min(1).max(MAX_RATE_PER_MINUTE).nullable();
const ratePerDay = z.number().int().min(1).max(MAX_RATE_PER_DAY).nullable();
const futureInstant = z.iso.datetime({ offset: true }).describe('RFC 3339 date-time; must be in the future');
/** What the schema cannot state (it depends on the clock); the create and extend descriptions say it. */
export const FUTURE_EXPIRY_RULE = '`expires_at` must be in the future: otherwise 400 invalid_request naming it.';
/** Permission sets are this deployment's (PERMISSION_SETS), so the shared document cannot list them. */
export const PERMISSION_SET_RULE =
  '`permission_set` names one of GET /api/permission-sets (PERMISSION_SETS varies by deployment): otherwise 422 unknown_permission_set.';
const metadata = z
  .record(z.string().max(64), z.unknown())
  .refine((m) => Buffer.byteLength(JSON.stringify(m)) <= MAX_METADATA_BYTES, `metadata must be at most ${MAX_METADATA_BYTES} bytes of JSON`)
  .describe(
    `Free-form JSON object kept with the key, at most ${MAX_METADATA_BYTES} bytes as JSON; metadata.byok is read by the gateway and only an admin token sets it`,
  );
const stripeCustomerId = z
  .string()
  .regex(/^cus_[A-Za-z0-9]{1,64}$/, 'Stripe customer ids look like cus_…')
  .nullable();
const name = z.string().trim().min(1).max(200);
const plan = z
  .string()
  .max(64)
  .nullable()
  .describe('A plan in PLANS (GET /api/plans), whose limits and scopes apply where the key has none of its own; null: no plan. Only an admin token sets it');

const monthlyQuota = z
  .number()
  .int()
  .min(1)
  .max(Number.MAX_SAFE_INTEGER)
  .nullable()
  .describe('Cost units per calendar month (UTC); null: no quota. An owner key may lower it, never raise it');

export const CreateKeyBody = named(
  z
    .strictObject({
      user_id: userId,
      name,
      description: description.optional(),
      rate_limit_per_minute: ratePerMinute.optional().describe('Requests per minute; null or absent: DEFAULT_RATE_LIMIT_PER_MINUTE, else unlimited'),
      rate_limit_per_day: ratePerDay.optional().describe('Requests per day; null or absent: DEFAULT_RATE_LIMIT_PER_DAY, else unlimited'),
      monthly_quota: monthlyQuota.optional(),
      plan: plan.optional(),
      scopes: scopes.optional(),
      permission_set: permissionSetName.nullable().optional(),
      expires_at: futureInstant.nullable().optional(),
      expires_in_days: z.number().int().min(1).max(MAX_EXPIRY_DAYS).optional(),
      metadata: metadata.optional(),
      stripe_customer_id: stripeCustomerId.optional(),
    })
    .refine((b) => b.expires_at === undefined || b.expires_in_days === undefined, {
      path: ['expires_at'],
      message: 'give expires_at or expires_in_days, not both',
    })
    .meta({ not: { required: ['expires_at', 'expires_in_days'] } }),
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
      plan: plan.optional(),
      scopes: scopes.optional(),
      permission_set: permissionSetName.nullable().optional(),
      metadata: metadata.optional(),
      stripe_customer_id: stripeCustomerId.optional(),
      is_active: z.boolean().optional().describe('false suspends the key (reversible); revoke is permanent'),
    })
    .refine((b) => Object.values(b).some((v) => v !== undefined), 'give at least one field to change')
    .meta({ minProperties: 1 }),
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
    .refine((b) => (b.expires_at !== undefined) !== (b.days !== undefined), 'give exactly one of expires_at or days')
    // The only two fields: exactly one of them, in JSON Schema's words.
    .meta({ minProperties: 1, maxProperties: 1 }),
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

/** A key-list cursor: the last key's created_at in µs since the epoch (16 digits: until 2286) and its id. */
export const KEY_CURSOR_RE = /^(\d{1,16})\.(key_[0-9A-Za-z]{20})$/;

const booleanQuery = z.enum(['true', 'false']).transform((v) => v === 'true');
const listQueryFields = {
  active: booleanQuery.optional().describe('true: only active keys; false: only revoked, suspended or expired ones'),
  expiring_within_days: z.coerce.number().int().min(1).max(MAX_EXPIRY_DAYS).optional().describe('Only keys that expire within this many days'),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().regex(KEY_CURSOR_RE, 'not a cursor this API returned').optional().describe('next_cursor of the previous page'),
};
export const UserKeysQuery = z.strictObject(listQueryFields);
export const AllKeysQuery = z.strictObject({
  user_id: userId.optional(),
  q: z.string().trim().min(1).max(200).optional().describe('Search: part of the name or user id, the start of the key prefix, or the exact key id'),
  status: z
    .enum(['active', 'revoked', 'expiring', 'suspended'])
    .optional()
    .describe('expiring: active and expiring within expiring_within_days (default 7); suspended: switched off (is_active false), not revoked'),
  ...listQueryFields,
});

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
    effective_scopes: z
      .array(z.string())
      .describe('Scopes the gateway grants: the permission set’s plus the key’s own, limited to its plan’s scopes if the plan lists any'),
    rate_limit_per_minute: z.number().int().nullable().describe('The key’s own limit (an override of its plan’s); null: none of its own'),
    rate_limit_per_day: z.number().int().nullable().describe('The key’s own limit (an override of its plan’s); null: none of its own'),
    monthly_quota: z.number().int().nullable().describe('The key’s own quota (an override of its plan’s); null: none of its own'),
    plan: z.string().nullable().describe('The plan (PLANS) the key is on: set by Stripe subscription events or an admin token'),
    effective_limits: z
      .object({
        rate_limit_per_minute: z.number().int().nullable(),
        rate_limit_per_day: z.number().int().nullable(),
        monthly_quota: z.number().int().nullable(),
      })
      .describe('What the gateway enforces: the key’s own limit, else its plan’s, else DEFAULT_RATE_LIMIT_*; null: unlimited'),
    expires_at: instant.nullable(),
    is_active: z.boolean(),
    status: z.enum(['active', 'revoked', 'expired', 'inactive', 'suspended']),
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
