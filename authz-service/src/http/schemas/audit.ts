import { z } from 'zod';
import { instant, named } from './common.js';

export const AuditEventsQuery = z.strictObject({
  actor: z.string().max(200).optional().describe('`admin`, `key:<id>` or `system`'),
  action: z.string().max(64).optional().describe('e.g. key.revoked'),
  key_id: z.string().max(64).optional(),
  since: instant.optional().describe('Events at or after this time'),
  until: instant.optional().describe('Events before this time'),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z
    .string()
    .regex(/^\d{1,19}$/, 'the next_cursor of the previous page')
    .optional(),
});

const AuditEvent = named(
  z.object({
    id: z.string(),
    at: instant,
    actor: z.string(),
    action: z.string(),
    key_id: z.string().nullable(),
    user_id: z.string().nullable(),
    details: z.record(z.string(), z.unknown()),
  }),
  'AuditEvent',
  'One audit-log row: who did what to which key (never a secret).',
);

export const AuditEventList = named(z.object({ data: z.array(AuditEvent), next_cursor: z.string().nullable() }), 'AuditEventList');
