/** An API key as the rest of the service sees it. Never carries the plaintext or the hash. */
export interface ApiKey {
  id: string;
  userId: string;
  name: string;
  description: string | null;
  keyPrefix: string;
  scopes: string[];
  permissionSet: string | null;
  rateLimitPerMinute: number | null;
  rateLimitPerDay: number | null;
  /** Cost units per calendar month (UTC); null: no quota of its own. */
  monthlyQuota: number | null;
  /** The PLANS entry whose limits apply where the key has none of its own (domain/plans.ts). */
  plan: string | null;
  expiresAt: Date | null;
  isActive: boolean;
  revokedAt: Date | null;
  revokedBy: string | null;
  revokedReason: string | null;
  lastUsedAt: Date | null;
  usageCount: number;
  metadata: Record<string, unknown>;
  stripeCustomerId: string | null;
  /**
   * Set while the key's Stripe customer has no paying subscription (docs/billing.md). Separate
   * from isActive so that lifting a suspension never re-enables a key an operator disabled.
   */
  billingSuspendedAt: Date | null;
  /** End of the grace period during which the previous secret (before a rotation) still works. */
  previousKeyExpiresAt: Date | null;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export type KeyState = 'active' | 'revoked' | 'expired' | 'inactive' | 'suspended';

export function keyState(key: ApiKey, now = Date.now()): KeyState {
  if (key.revokedAt) return 'revoked';
  if (!key.isActive) return 'inactive';
  if (key.expiresAt && key.expiresAt.getTime() <= now) return 'expired';
  if (key.billingSuspendedAt) return 'suspended';
  return 'active';
}
