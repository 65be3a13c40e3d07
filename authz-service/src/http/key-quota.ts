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
export async function keyQuota(deps: Pick<ServiceDeps, 'redis' | 'config'>, key: ApiKey, now = new Date()): Promise<KeyQuota | null> {
  if (!key.monthlyQuota) return null;
  const used = await new RateLimiter(deps.redis, deps.config.REDIS_KEY_PREFIX).quotaUsed(key.id, now);
  return {
    monthly_quota: key.monthlyQuota,
    used,
    remaining: Math.max(0, key.monthlyQuota - used),
    resets_at: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString(),
  };
}
