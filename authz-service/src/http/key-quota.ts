import type { ApiKey } from '../domain/api-key.js';
import { RateLimiter } from '../check/rate-limiter.js';
import type { ServiceDeps } from '../deps.js';

export interface KeyQuota {
  monthly_quota: number;
  used: number;
  remaining: number;
  resets_at: string;
}

/** This calendar month's (UTC) quota use of a key, read from the Check's counter without counting. */
export async function keyQuota(deps: Pick<ServiceDeps, 'redis' | 'config' | 'plans'>, key: ApiKey, now = new Date()): Promise<KeyQuota | null> {
  // The quota the Check enforces: the key's own, else its plan's.
  const quota = deps.plans.limitsOf(key).monthlyQuota;
  if (!quota) return null;
  const used = await new RateLimiter(deps.redis, deps.config.REDIS_KEY_PREFIX).quotaUsed(key.id, now);
  return {
    monthly_quota: quota,
    used,
    remaining: Math.max(0, quota - used),
    resets_at: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString(),
  };
}
