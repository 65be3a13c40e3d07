import { z } from 'zod';
import { description, instant, MAX_EXPIRY_DAYS, named } from './common.js';

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
  // Number('') is 0, a valid value here: an empty ?unused_days= is refused, not read as 0.
  unused_days: z
    .preprocess((v) => (v === '' ? Number.NaN : v), z.coerce.number().int().min(0).max(3650))
    .optional()
    .describe('Only tokens not used for this many days (never used counts)'),
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
