import { z } from 'zod';
import { instant, named } from './common.js';

const provider = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/, 'provider names are letters, digits, _ or -, at most 32')
  .transform((p) => p.toLowerCase());
const secret = z.string().min(1).max(4096).describe('The provider credential; write-only, never returned');
const label = z.string().min(1).max(200).describe('What people call this account (e.g. "openai org 2")');

export const OperatorCredentialParams = z.strictObject({ credential_id: z.string().regex(/^opc_[0-9a-f]{24}$/, 'an operator credential id (opc_…)') });
export const CreateOperatorCredentialBody = named(z.strictObject({ provider, label, secret }), 'CreateOperatorCredentialRequest');
export const RotateOperatorCredentialBody = named(z.strictObject({ secret, label: label.optional() }), 'RotateOperatorCredentialRequest');
export const OperatorCredential = named(
  z.object({
    object: z.literal('operator_credential'),
    id: z.string(),
    provider: z.string(),
    label: z.string(),
    fingerprint: z.string().describe('First 12 hex digits of SHA-256 of the secret, to tell secrets apart'),
    master_key_id: z.string(),
    created_at: instant,
    updated_at: instant,
    in_rotation: z
      .boolean()
      .describe('false once its provider answered a status in OPERATOR_CREDENTIAL_REJECT_STATUSES after its last update; rotating it puts it back'),
    rejected: z
      .object({ status: z.number().int(), last_seen_at: instant })
      .nullable()
      .describe('The rejecting status and when it was last seen, while out of rotation; null otherwise'),
  }),
  'OperatorCredential',
  'An operator-owned provider credential: metadata only, never the secret',
);
export const OperatorCredentialList = named(z.object({ object: z.literal('list'), data: z.array(OperatorCredential) }), 'OperatorCredentialList');
export const DeletedOperatorCredential = named(
  z.object({ object: z.literal('operator_credential'), id: z.string(), provider: z.string(), deleted: z.literal(true) }),
  'DeletedOperatorCredential',
);
