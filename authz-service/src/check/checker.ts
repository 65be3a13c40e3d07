import { CHECK_METADATA, pathOnly, type CheckMetadata, type CredentialKind, type Logger } from '@tollgate/common';
import type { Counter } from 'prom-client';
import { extractCredential, looksLikeJwt } from '../domain/credentials.js';
import { checkKeyShape } from '../domain/key-format.js';
import type { KeyHasher } from '../domain/key-hash.js';
import { keyState, type ApiKey } from '../domain/api-key.js';
import { effectiveScopes, requiredScope, scopeAllows, serviceRouteAllowed, SERVICE_ROUTE_SCOPE, type RouteScopeRule } from '../domain/scopes.js';
import { hasPathParameters } from '../domain/path-prefix.js';
import { routeCost, type RouteCostRule } from '../domain/route-cost.js';
import { bearerChallenge } from '../domain/bearer-challenge.js';
import type { PlanCatalog } from '../domain/plans.js';
import { serviceTokenRouteFor, type ServiceTokenRouteRule } from '../domain/service-token.js';
import { deny, type CheckInput, type Decision } from './decision.js';
import { KeyStoreUnavailableError, type KeyResolver } from './key-resolver.js';
import type { RateLimiter, RateLimitResult } from './rate-limiter.js';
import { rateLimitHeaders } from './rate-limit-headers.js';
import type { UsageBatcher } from './usage-batcher.js';
import type { TokenChecker } from './token-checker.js';
import type { ProviderInjector } from './provider-injector.js';

export interface CheckerSettings {
  acceptedPrefixes: string[];
  routeScopes: RouteScopeRule[];
  /** ROUTE_COSTS: a request's weight against the monthly quota and in billing. */
  routeCosts?: RouteCostRule[];
  /** Prefixes for service tokens only: API keys need `service_route:<prefix>` there. */
  serviceTokenRoutes: ServiceTokenRouteRule[];
  permissionSets: Record<string, readonly string[]>;
  failureMode: 'open' | 'closed';
  /** PLANS and DEFAULT_RATE_LIMIT_*: what a key without limits of its own gets, in memory. */
  plans: PlanCatalog;
}

export interface CheckerDeps {
  settings: CheckerSettings;
  hasher: KeyHasher;
  resolver: KeyResolver;
  limiter: RateLimiter;
  usage: UsageBatcher;
  logger: Logger;
  redisFailures: Counter;
  /** Service tokens (JWTs); without it a JWT is refused like any malformed key. */
  tokens?: TokenChecker;
  /** Provider credentials (vault and bring-your-own-key) on provider routes. */
  providers?: ProviderInjector;
}

/**
 * The identity a decision about a known key publishes, refusals included: a revoked key's 401
 * then shows on that key's chart and its owner's (never billed: publishedMetadata marks it deny).
 */
function keyIdentity(key: ApiKey): CheckMetadata {
  const metadata: CheckMetadata = {
    [CHECK_METADATA.credential]: 'api_key' satisfies CredentialKind,
    [CHECK_METADATA.userId]: key.userId,
    [CHECK_METADATA.keyId]: key.id,
  };
  if (key.stripeCustomerId) metadata[CHECK_METADATA.stripeCustomerId] = key.stripeCustomerId;
  return metadata;
}

/** The whole Check decision: credential → key → state → scope → rate limit. */
export class Checker {
  constructor(private readonly d: CheckerDeps) {}

  async check(input: CheckInput): Promise<Decision> {
    if (hasPathParameters(pathOnly(input.path))) {
      // Upstreams disagree on what `;` means in a path, so no prefix rule can be trusted with one (path-prefix.ts).
      return deny(400, 'invalid_path', 'Path parameters (";") are not accepted in the request path', { outcome: 'path_parameters' });
    }
    const cred = extractCredential(input.headers);
    if (!cred.ok) {
      return deny(401, cred.reason === 'missing' ? 'missing_credential' : 'invalid_credential', cred.message);
    }
    if (looksLikeJwt(cred.value)) {
      if (this.d.tokens) return this.d.tokens.check(cred.value, input);
      return deny(401, 'invalid_token', 'Service tokens are not accepted by this gateway');
    }
    const shape = checkKeyShape(cred.value, this.d.settings.acceptedPrefixes);
    if (shape) {
      const message = shape === 'bad_checksum' ? 'The API key is not valid (its checksum does not match: a typo?)' : 'The API key is not valid (malformed)';
      return deny(401, 'invalid_api_key', message, { outcome: `invalid_${shape}` });
    }

    let key: ApiKey;
    try {
      const hashes = this.d.hasher.candidates(cred.value);
      if (input.cacheOnly && !this.d.resolver.isCached(hashes)) {
        return deny(401, 'invalid_api_key', 'The API key is not valid (unknown key)', { outcome: 'lookup_skipped' });
      }
      const match = await this.d.resolver.resolve(hashes);
      if (!match) return deny(401, 'invalid_api_key', 'The API key is not valid (unknown key)', { outcome: 'unknown_key' });
      // A pre-rotation secret works only until its grace period ends — checked here, per
      // request, because a cached match would otherwise outlive the grace by up to the cache TTL.
      if (match.matched === 'previous' && !(match.key.previousKeyExpiresAt && match.key.previousKeyExpiresAt.getTime() > Date.now())) {
        return deny(401, 'invalid_api_key', 'The API key was rotated and its grace period has ended', {
          outcome: 'rotated_key_expired',
          metadata: keyIdentity(match.key),
        });
      }
      key = match.key;
    } catch (err) {
      if (err instanceof KeyStoreUnavailableError) {
        return deny(503, 'unavailable', 'The key store is unavailable; try again shortly', {
          headers: { 'retry-after': '1' },
          outcome: 'key_store_unavailable',
        });
      }
      throw err;
    }

    const metadata = keyIdentity(key);
    const state = keyState(key);
    if (state === 'suspended') {
      return deny(402, 'billing_suspended', 'The API key is suspended: its subscription is not paid (docs/billing.md)', { metadata });
    }
    if (state !== 'active') {
      const text = { revoked: 'has been revoked', expired: 'has expired', inactive: 'is disabled' }[state];
      return deny(401, `key_${state}`, `The API key ${text}`, { metadata });
    }

    const path = pathOnly(input.path);
    const scopes = this.d.settings.plans.scopesOf(effectiveScopes(key, this.d.settings.permissionSets), key.plan);
    const serviceRoute = serviceTokenRouteFor(path, this.d.settings.serviceTokenRoutes);
    if (serviceRoute && !serviceRouteAllowed(scopes, path)) {
      const grant = `${SERVICE_ROUTE_SCOPE}:${serviceRoute.prefix}`;
      return deny(403, 'service_token_required', `${path} is for service tokens only; an API key needs the "${grant}" scope`, {
        headers: { 'www-authenticate': bearerChallenge({ error: 'insufficient_scope', scope: grant }) },
        metadata,
      });
    }
    const needed = requiredScope(input.method, path, this.d.settings.routeScopes);
    if (!scopeAllows(scopes, needed, path)) {
      return deny(403, 'insufficient_scope', `This API key lacks the "${needed}" scope needed for ${input.method.toUpperCase()} ${path}`, {
        headers: { 'www-authenticate': bearerChallenge({ error: 'insufficient_scope', scope: needed }) },
        metadata,
      });
    }

    let providerHeaders: Record<string, string> = {};
    if (this.d.providers) {
      const injected = await this.d.providers.resolve(key, input, path);
      if ('allow' in injected) return { ...injected, metadata };
      providerHeaders = injected.headers;
      Object.assign(metadata, injected.metadata);
    }

    // The key's own limits, else its plan's (from the cached key's `plan`, no query), else the defaults.
    const effective = this.d.settings.plans.limitsOf(key);
    const limits = {
      perMinute: effective.rateLimitPerMinute,
      perDay: effective.rateLimitPerDay,
      ...(effective.monthlyQuota ? { monthlyQuota: effective.monthlyQuota } : {}),
    };
    const cost = routeCost(path, this.d.settings.routeCosts ?? []);
    // Published only when ROUTE_COSTS weighs the route: billing counts an absent cost as 1.
    if (cost !== 1) metadata[CHECK_METADATA.cost] = String(cost);
    let responseHeaders: Record<string, string> = {};
    let outcome: 'allowed' | 'allowed_fail_open' = 'allowed';
    if (limits.perMinute || limits.perDay || limits.monthlyQuota) {
      let result: RateLimitResult;
      try {
        result = await (cost === 1 ? this.d.limiter.hit(key.id, limits) : this.d.limiter.hit(key.id, limits, cost));
      } catch (err) {
        this.d.redisFailures.inc();
        if (this.d.settings.failureMode === 'closed') {
          this.d.logger.warn({ err: (err as Error).message, keyId: key.id }, 'rate limiter unavailable; failing closed');
          return deny(503, 'unavailable', 'Rate limiting is unavailable; try again shortly', {
            headers: { 'retry-after': '1' },
            metadata,
            outcome: 'rate_limiter_unavailable',
          });
        }
        this.d.logger.warn({ err: (err as Error).message, keyId: key.id }, 'rate limiter unavailable; failing open');
        result = { allowed: true, minute: null, day: null, retryAfterMs: 0 };
        outcome = 'allowed_fail_open';
      }
      responseHeaders = rateLimitHeaders(result);
      if (!result.allowed && result.deniedBy === 'quota') {
        const retryAfter = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
        return deny(429, 'quota_exceeded', 'Monthly quota exhausted; it renews at the start of next month (UTC)', {
          headers: { ...responseHeaders, 'retry-after': String(retryAfter) },
          metadata,
        });
      }
      if (!result.allowed) {
        const retryAfter = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
        return deny(429, 'rate_limited', `Rate limit exceeded; retry in ${retryAfter} s`, {
          headers: { ...responseHeaders, 'retry-after': String(retryAfter) },
          metadata,
        });
      }
    }

    this.d.usage.record(key.id);
    return {
      allow: true,
      upstreamHeaders: {
        'x-user-id': key.userId,
        'x-api-key-id': key.id,
        'x-api-key-scopes': scopes.join(' '),
        ...providerHeaders,
      },
      removeHeaders: ['authorization', 'x-api-key', 'x-service-project', 'x-service-name', 'x-token-id'],
      responseHeaders,
      metadata,
      outcome,
    };
  }
}
