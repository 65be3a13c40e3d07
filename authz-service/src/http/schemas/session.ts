import { z } from 'zod';
import { apiSchemas } from './common.js';

export const CreateSessionBody = z.strictObject({
  token: z.string().min(1).max(512).describe('An admin token, or a Tollgate key with the keys:manage scope'),
});
apiSchemas.add(CreateSessionBody, { id: 'CreateSessionRequest' });

export const SessionRecord = z.object({
  kind: z.enum(['admin', 'owner']),
  user_id: z.string().nullable().describe('The owner key’s user; null for an admin session'),
  scopes: z.array(z.string()).describe('The owner key’s scopes now; ["*"] for an admin session'),
  expires_at: z.iso.datetime({ offset: true }).describe('The absolute end (SESSION_MAX_AGE_MS after sign-in)'),
  idle_expires_at: z.iso.datetime({ offset: true }).describe('When the session ends unless used before (SESSION_IDLE_TIMEOUT_MS after its last use)'),
  csrf_token: z.string().describe('Send as X-CSRF-Token on every POST, PUT, PATCH and DELETE made with the cookie'),
});
apiSchemas.add(SessionRecord, {
  id: 'Session',
  description: 'A console session: who it acts as, until when, and the CSRF token its state-changing calls carry.',
});
