import type { Logger } from '@tollgate/common';
import type { Counter } from 'prom-client';
import { Checker, type CheckerDeps, type CheckerSettings } from '../src/check/checker.js';
import type { CheckInput, Decision, Deny } from '../src/check/decision.js';
import type { KeyResolver } from '../src/check/key-resolver.js';
import type { ProviderInjector } from '../src/check/provider-injector.js';
import type { KeyLimits, RateLimiter, RateLimitResult } from '../src/check/rate-limiter.js';
import type { TokenChecker } from '../src/check/token-checker.js';
import type { UsageBatcher } from '../src/check/usage-batcher.js';
import type { ApiKey } from '../src/domain/api-key.js';
import { PlanCatalog } from '../src/domain/plans.js';
import type { KeyHasher } from '../src/domain/key-hash.js';
import type { HashMatch } from '../src/stores/key-store.js';

// In-memory stand-ins for the Checker's dependencies: each does what the Checker asks of it,
// records the calls and answers what the test set, with no Postgres, Redis or clock behind it.
// The real classes have private state, so each fake is cast to its type once, in checkerWith.

export function apiKey(overrides: Partial<ApiKey> = {}): ApiKey {
  return {
    id: 'key_1',
    userId: 'user_1',
    name: 'test key',
    description: null,
    keyPrefix: 'sk_abcdef',
    scopes: ['*'],
    permissionSet: null,
    rateLimitPerMinute: null,
    rateLimitPerDay: null,
    monthlyQuota: null,
    plan: null,
    expiresAt: null,
    isActive: true,
    revokedAt: null,
    revokedBy: null,
    revokedReason: null,
    lastUsedAt: null,
    usageCount: 0,
    metadata: {},
    stripeCustomerId: null,
    billingSuspendedAt: null,
    previousKeyExpiresAt: null,
    createdBy: null,
    createdAt: new Date('2026-01-01T00:00:00Z'),
    updatedAt: new Date('2026-01-01T00:00:00Z'),
    ...overrides,
  };
}

/** Hashes are readable tags of the secret, newest "secret" first, as KeyHasher orders them. */
class FakeHasher {
  candidates(key: string): string[] {
    return [`new:${key}`, `old:${key}`];
  }
  primary(key: string): string {
    return `new:${key}`;
  }
}

class FakeKeyResolver {
  readonly calls: string[][] = [];
  private readonly byHash = new Map<string, HashMatch>();
  /** Thrown from resolve when set (a key-store outage, or an unexpected bug). */
  failWith: Error | undefined;

  add(hash: string, key: ApiKey, matched: HashMatch['matched'] = 'current'): void {
    this.byHash.set(hash, { key, matched });
  }

  async resolve(hashes: string[]): Promise<HashMatch | null> {
    this.calls.push(hashes);
    if (this.failWith) throw this.failWith;
    for (const h of hashes) {
      const m = this.byHash.get(h);
      if (m) return m;
    }
    return null;
  }
}

class FakeLimiter {
  readonly calls: { keyId: string; limits: KeyLimits }[] = [];
  answer: RateLimitResult | Error = { allowed: true, minute: null, day: null, retryAfterMs: 0 };

  async hit(keyId: string, limits: KeyLimits): Promise<RateLimitResult> {
    this.calls.push({ keyId, limits });
    if (this.answer instanceof Error) throw this.answer;
    return this.answer;
  }
}

class FakeUsage {
  readonly recorded: string[] = [];
  record(keyId: string): void {
    this.recorded.push(keyId);
  }
}

export class FakeTokens {
  readonly calls: { token: string; input: CheckInput }[] = [];
  constructor(readonly answer: Decision) {}
  async check(token: string, input: CheckInput): Promise<Decision> {
    this.calls.push({ token, input });
    return this.answer;
  }
}

export class FakeProviders {
  readonly calls: { key: ApiKey; input: CheckInput; path: string }[] = [];
  constructor(readonly answer: { headers: Record<string, string> } | Deny) {}
  async resolve(key: ApiKey, input: CheckInput, path: string): Promise<{ headers: Record<string, string> } | Deny> {
    this.calls.push({ key, input, path });
    return this.answer;
  }
}

class FakeCounter {
  value = 0;
  inc(): void {
    this.value++;
  }
}

/** Every log call as [level, fields, message], so a test can check what was (not) logged. */
class FakeLogger {
  readonly lines: [string, unknown, string | undefined][] = [];
  private log = (level: string) => (fields: unknown, message?: string) => void this.lines.push([level, fields, message]);
  trace = this.log('trace');
  debug = this.log('debug');
  info = this.log('info');
  warn = this.log('warn');
  error = this.log('error');
  fatal = this.log('fatal');
  child = () => this;
}

const DEFAULT_SETTINGS: CheckerSettings = {
  acceptedPrefixes: ['sk'],
  routeScopes: [],
  serviceTokenRoutes: [],
  permissionSets: { read_only: ['read'], full_access: ['*'] },
  failureMode: 'open',
  plans: new PlanCatalog([], { perMinute: null, perDay: null }),
};

export interface CheckerFixture {
  checker: Checker;
  hasher: FakeHasher;
  resolver: FakeKeyResolver;
  limiter: FakeLimiter;
  usage: FakeUsage;
  logger: FakeLogger;
  redisFailures: FakeCounter;
}

export function checkerWith(opts: { settings?: Partial<CheckerSettings>; tokens?: FakeTokens; providers?: FakeProviders } = {}): CheckerFixture {
  const f = {
    hasher: new FakeHasher(),
    resolver: new FakeKeyResolver(),
    limiter: new FakeLimiter(),
    usage: new FakeUsage(),
    logger: new FakeLogger(),
    redisFailures: new FakeCounter(),
  };
  const deps: CheckerDeps = {
    settings: { ...DEFAULT_SETTINGS, ...opts.settings },
    hasher: f.hasher as unknown as KeyHasher,
    resolver: f.resolver as unknown as KeyResolver,
    limiter: f.limiter as unknown as RateLimiter,
    usage: f.usage as unknown as UsageBatcher,
    logger: f.logger as unknown as Logger,
    redisFailures: f.redisFailures as unknown as Counter,
    tokens: opts.tokens as unknown as TokenChecker | undefined,
    providers: opts.providers as unknown as ProviderInjector | undefined,
  };
  return { checker: new Checker(deps), ...f };
}
