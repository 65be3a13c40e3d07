import { createHash } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import type { RedisClient } from '../stores/redis-client.js';
import type { RedisWriteCoalescer } from '../stores/redis-write-coalescer.js';
import { RATE_LIMIT_LUA as SCRIPT } from './rate-limit-script.js';

const SCRIPT_SHA = createHash('sha1').update(SCRIPT).digest('hex');

export interface WindowState {
  limit: number;
  remaining: number;
  /** Milliseconds until the current fixed window ends. */
  resetMs: number;
}

/** The calendar month's quota (UTC), in cost units. */
interface QuotaState {
  limit: number;
  /** Counted this month, this request included when it was allowed. */
  used: number;
  remaining: number;
  /** Milliseconds until the next month starts (UTC). */
  resetMs: number;
}

export interface RateLimitResult {
  allowed: boolean;
  minute: WindowState | null;
  day: WindowState | null;
  quota?: QuotaState | null;
  /** When denied, which limit said no. */
  deniedBy?: 'rate' | 'quota' | null;
  /** When denied: how long until a retry can succeed. */
  retryAfterMs: number;
}

export interface KeyLimits {
  perMinute: number | null;
  perDay: number | null;
  /** Cost units per calendar month (UTC); null: no quota. */
  monthlyQuota?: number | null;
}

/** Counted by the Checker, which applies RATE_LIMIT_FAILURE_MODE to each failed hit(). */
export function createRedisFailuresCounter(registry: Registry): Counter {
  return new Counter({
    name: 'tollgate_authz_redis_failures_total',
    help: 'Rate-limit calls that failed (Redis down or slow); each was failed open or closed per RATE_LIMIT_FAILURE_MODE',
    registers: [registry],
  });
}

/**
 * Per-key limits in Redis: one EVALSHA per request checks and counts both windows. The script
 * is loaded once; after a Redis restart (NOSCRIPT) it is sent in full once and cached again.
 */
export class RateLimiter {
  /** Window sizes in ms; only tests change them. */
  private readonly windows: { minute: number; day: number };
  private readonly writes: RedisWriteCoalescer | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    opts: { windows?: { minute: number; day: number }; writes?: RedisWriteCoalescer } = {},
  ) {
    this.windows = opts.windows ?? { minute: 60_000, day: 86_400_000 };
    this.writes = opts.writes;
  }

  counterKey(keyId: string): string {
    return `${this.prefix}rl:{${keyId}}`;
  }

  /** Same hash tag as counterKey: the script touches both in one Redis Cluster slot. */
  quotaKey(keyId: string): string {
    return `${this.prefix}quota:{${keyId}}`;
  }

  /** This month's quota use without counting anything (management API): 0 when none recorded yet. */
  async quotaUsed(keyId: string, now = new Date()): Promise<number> {
    const [month, used] = await this.redis.hmget(this.quotaKey(keyId), 'month', 'used');
    return Number(month) === now.getUTCFullYear() * 12 + now.getUTCMonth() ? Number(used ?? 0) : 0;
  }

  /** Loads the script on every node that will run it (each master of a cluster). */
  async load(): Promise<void> {
    const targets = 'nodes' in this.redis ? this.redis.nodes('master') : [this.redis];
    await Promise.all(targets.map((node) => node.script('LOAD', SCRIPT)));
  }

  /** `quotaCost`: this request's weight against the monthly quota (ROUTE_COSTS); rate windows count 1. */
  async hit(keyId: string, limits: KeyLimits, quotaCost = 1): Promise<RateLimitResult> {
    const args = [
      this.counterKey(keyId),
      this.quotaKey(keyId),
      String(limits.perMinute ?? 0),
      String(limits.perDay ?? 0),
      '1',
      String(this.windows.minute),
      String(this.windows.day),
      String(limits.monthlyQuota ?? 0),
      String(quotaCost),
    ];
    let raw: number[];
    try {
      const reply = this.redis.evalsha(SCRIPT_SHA, 2, ...args);
      this.writes?.sent();
      raw = (await reply) as number[];
    } catch (err) {
      if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw err;
      raw = (await this.redis.eval(SCRIPT, 2, ...args)) as number[];
    }
    const [allowed, mLimit, mRem, mReset, dLimit, dRem, dReset, retry, qLimit, qUsed, qReset, deniedBy] = raw.map(Number) as number[];
    return {
      allowed: allowed === 1,
      minute: mLimit ? { limit: mLimit, remaining: mRem!, resetMs: mReset! } : null,
      day: dLimit ? { limit: dLimit!, remaining: dRem!, resetMs: dReset! } : null,
      quota: qLimit ? { limit: qLimit, used: qUsed!, remaining: Math.max(0, qLimit - qUsed!), resetMs: qReset! } : null,
      deniedBy: deniedBy === 2 ? 'quota' : deniedBy === 1 ? 'rate' : null,
      retryAfterMs: retry ?? 0,
    };
  }
}
