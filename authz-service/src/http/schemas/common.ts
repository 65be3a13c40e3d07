import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '@tollgate/common';
import { KEY_ID_RE } from '../../stores/key-store.js';

/**
 * The management API's request and response schemas. Handlers validate with these, and
 * /openapi.json is generated from these same objects (openapi.ts), so the document cannot drift
 * from what the server accepts. Every schema a route names is registered under an id in
 * `apiSchemas`, which becomes `components.schemas` in the OpenAPI document. This file holds the
 * registry, the fields several resources share and the Error body; each resource's own schemas
 * are in keys.ts, tokens.ts, vault.ts and usage.ts.
 */
export const apiSchemas = z.registry<{ id: string; description?: string }>();

export const named = <T extends z.ZodType>(schema: T, id: string, description?: string): T => {
  apiSchemas.add(schema, description ? { id, description } : { id });
  return schema;
};

export const MAX_EXPIRY_DAYS = 3650;

export const userId = z
  .string()
  .regex(/^[A-Za-z0-9._@:+-]{1,128}$/, 'user ids are 1-128 letters, digits or . _ @ : + -')
  .describe('The owner of the key, as your system names it');
export const keyId = z.string().regex(KEY_ID_RE, 'key ids look like key_ followed by 20 letters or digits');
export const description = z.string().max(2000).nullable();

export const KeyIdParams = z.strictObject({ id: keyId });
export const UserIdParams = z.strictObject({ user_id: userId });
/**
 * `/api/keys/<x>` lists user <x>'s keys (GET) and is key <x> for PATCH and DELETE. An <x> shaped
 * like a key id is the key: GET refuses it (405, pointing at /by-id/) rather than list a user named so.
 */
export const KeysOwnerParams = z.strictObject({
  user_id: userId.refine((v) => !KEY_ID_RE.test(v), 'that is a key id: GET /api/keys/by-id/<id> reads one key'),
});
export const KEYS_OWNER_RULE =
  'A `user_id` shaped like a key id (`key_` and 20 letters or digits) is that key’s path: 405 with Allow: DELETE, PATCH (read one key at /api/keys/by-id/<id>).';

export const instant = z.iso.datetime({ offset: true });

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
