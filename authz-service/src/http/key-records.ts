import { HttpError } from '@tollgate/common';
import { keyState, type ApiKey } from '../domain/api-key.js';
import type { PlanCatalog } from '../domain/plans.js';
import { effectiveScopes } from '../domain/scopes.js';
import type { KeyListCursor } from '../stores/key-store.js';
import { KEY_CURSOR_RE, type KeyRecord } from './schemas/keys.js';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** The JSON form of a key (snake_case, as seed 003 names fields). Never the secret or its hash. */
export function toKeyRecord(key: ApiKey, sets: Record<string, readonly string[]>, plans: PlanCatalog, now = Date.now()): KeyRecord {
  const limits = plans.limitsOf(key);
  return {
    object: 'key',
    id: key.id,
    user_id: key.userId,
    name: key.name,
    description: key.description,
    key_prefix: key.keyPrefix,
    scopes: key.scopes,
    permission_set: key.permissionSet,
    effective_scopes: plans.scopesOf(effectiveScopes(key, sets), key.plan),
    rate_limit_per_minute: key.rateLimitPerMinute,
    rate_limit_per_day: key.rateLimitPerDay,
    monthly_quota: key.monthlyQuota,
    plan: key.plan,
    effective_limits: {
      rate_limit_per_minute: limits.rateLimitPerMinute,
      rate_limit_per_day: limits.rateLimitPerDay,
      monthly_quota: limits.monthlyQuota,
    },
    expires_at: iso(key.expiresAt),
    is_active: key.isActive,
    status: keyState(key, now),
    revoked_at: iso(key.revokedAt),
    revoked_reason: key.revokedReason,
    last_used_at: iso(key.lastUsedAt),
    usage_count: key.usageCount,
    metadata: key.metadata,
    stripe_customer_id: key.stripeCustomerId,
    // A grace period that has ended is history, not state: show it only while it runs.
    previous_key_expires_at: key.previousKeyExpiresAt && key.previousKeyExpiresAt.getTime() > now ? key.previousKeyExpiresAt.toISOString() : null,
    created_by: key.createdBy,
    created_at: key.createdAt.toISOString(),
    updated_at: key.updatedAt.toISOString(),
  };
}

/**
 * Page cursors: "<created_at µs>.<key id>", the position of the page's last key. Plain rather
 * than encoded, so the list's query schema (KEY_CURSOR_RE) states exactly which cursors exist.
 */
export function encodeCursor(c: KeyListCursor): string {
  return `${c.createdAtMicros}.${c.id}`;
}

export function decodeCursor(raw: string): KeyListCursor {
  const m = KEY_CURSOR_RE.exec(raw);
  if (!m)
    throw new HttpError(400, 'invalid_request', 'query.cursor: not a cursor this API returned', [
      { field: 'query.cursor', code: 'invalid_cursor', message: 'not a cursor this API returned' },
    ]);
  return { createdAtMicros: m[1]!, id: m[2]! };
}
