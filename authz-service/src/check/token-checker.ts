import type { Counter } from 'prom-client';
import { CHECK_METADATA, pathOnly, type CheckMetadata, type CredentialKind } from '@tollgate/common';
import { verifyServiceToken, tokenAllowsPath, type ServiceTokenRouteRule, type SigningSecret } from '../domain/service-token.js';
import type { GatewayToken, TokenStore } from '../stores/token-store.js';
import { deny, type CheckInput, type Decision } from './decision.js';
import type { UsageBatcher } from './usage-batcher.js';
import { RefreshingCache } from './refreshing-cache.js';

export interface TokenCheckerSettings {
  secrets: SigningSecret[] | undefined;
  issuer: string;
  clockToleranceS: number;
  rules: ServiceTokenRouteRule[];
  cacheTtlMs: number;
  negativeTtlMs: number;
  /** See RefreshingCacheOptions: serve-stale bound and the key-event feed's state. */
  maxStaleMs: number;
  synced?: () => boolean;
}

/**
 * Service tokens at Check: signature, expiry and issuer (jose), then the registry — a token
 * must exist and not be revoked — then its routes. Registry rows are cached like keys: fresh
 * for the cache TTL, dropped on a `token_changed` event from any replica, served stale for at
 * most KEY_CACHE_MAX_STALE_MS past the TTL when Postgres is down (never once dropped).
 */
export class TokenChecker {
  private readonly registry: RefreshingCache<GatewayToken>;

  constructor(
    private readonly settings: TokenCheckerSettings,
    store: TokenStore,
    private readonly usage: UsageBatcher,
    lookups: Counter,
  ) {
    this.registry = new RefreshingCache({
      max: 10_000,
      negativeMax: 10_000,
      ttlMs: settings.cacheTtlMs,
      negativeTtlMs: settings.negativeTtlMs,
      maxStaleMs: settings.maxStaleMs,
      synced: settings.synced,
      load: (jti) => store.get(jti),
      onLoad: () => lookups.inc(),
    });
  }

  get enabled(): boolean {
    return Boolean(this.settings.secrets?.length);
  }

  invalidate(jti: string): void {
    this.registry.invalidate(jti);
  }

  clear(): void {
    this.registry.clear();
  }

  async check(token: string, input: CheckInput): Promise<Decision> {
    if (!this.settings.secrets?.length) {
      return deny(401, 'invalid_token', 'Service tokens are not enabled on this gateway');
    }
    const verified = await verifyServiceToken(token, this.settings.secrets, {
      issuer: this.settings.issuer,
      clockToleranceS: this.settings.clockToleranceS,
    });
    if (!verified.ok) {
      return verified.reason === 'expired'
        ? deny(401, 'token_expired', 'The service token has expired')
        : deny(401, 'invalid_token', 'The service token is not valid', { outcome: 'token_invalid' });
    }
    const { claims } = verified;
    let record: GatewayToken | null;
    try {
      record = await this.registry.get(claims.jti);
    } catch {
      return deny(503, 'unavailable', 'The token registry is unavailable; try again shortly', {
        headers: { 'retry-after': '1' },
        outcome: 'token_store_unavailable',
      });
    }
    if (!record) return deny(401, 'invalid_token', 'The service token is not known to this gateway', { outcome: 'token_unknown' });
    // A registered token's refusals carry its identity, so they count on the token's usage.
    const metadata: CheckMetadata = {
      [CHECK_METADATA.credential]: 'service_token' satisfies CredentialKind,
      [CHECK_METADATA.tokenId]: claims.jti,
      [CHECK_METADATA.project]: claims.project,
      [CHECK_METADATA.service]: claims.service,
    };
    if (record.revokedAt || !record.isActive) return deny(401, 'token_revoked', 'The service token has been revoked', { metadata });
    if (record.expiresAt.getTime() <= Date.now()) return deny(401, 'token_expired', 'The service token has expired', { metadata });
    const path = pathOnly(input.path);
    if (!tokenAllowsPath(claims, path, this.settings.rules)) {
      return deny(403, 'route_not_allowed', `This service token (${claims.project}/${claims.service}) may not call ${path}`, { metadata });
    }
    this.usage.record(claims.jti);
    return {
      allow: true,
      upstreamHeaders: {
        'x-service-project': claims.project,
        'x-service-name': claims.service,
        'x-token-id': claims.jti,
      },
      removeHeaders: ['authorization', 'x-api-key', 'x-user-id', 'x-api-key-id', 'x-api-key-scopes'],
      responseHeaders: {},
      metadata,
      outcome: 'allowed',
    };
  }
}
