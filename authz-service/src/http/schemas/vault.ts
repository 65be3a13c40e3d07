import { z } from 'zod';
import { instant, named, userId } from './common.js';

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
const rewrapCounts = { rewrapped: z.number().int(), failed: z.number().int() };
export const RewrapResult = named(
  z.object({
    ...rewrapCounts,
    master_key_id: z.string(),
    by_table: z
      .object({ provider_keys: z.object(rewrapCounts), operator_credentials: z.object(rewrapCounts), webhook_secrets: z.object(rewrapCounts) })
      .describe('The totals split into users’ credentials, the operator’s, and webhook signing secrets (a previous secret in its grace counts on its own)'),
  }),
  'RewrapResult',
  'Counts of every sealed-secret table: rewrapped (moved to master_key_id) and failed (logged; they stay under their old key)',
);
