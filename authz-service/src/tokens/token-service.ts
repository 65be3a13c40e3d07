import type { ServiceDeps } from '../deps.js';
import { signServiceToken } from '../domain/service-token.js';
import { AuditStore } from '../stores/audit-store.js';
import type { GatewayToken } from '../stores/token-store.js';
import { afterCommit, inTransaction } from '../stores/transaction.js';

const audit = new AuditStore();

export class TokensDisabledError extends Error {
  constructor() {
    super('service tokens are off: set GATEWAY_JWT_SECRET');
    this.name = 'TokensDisabledError';
  }
}

export interface IssueTokenInput {
  project: string;
  service: string;
  description?: string | null;
  /** Route prefixes the token may call; defaults to `/<project>/`. */
  routes?: string[];
  expiresInDays: number;
  createdBy: string;
}

/**
 * Signs a token and records it in the registry with its audit row, in one transaction: a token
 * not recorded (or not audited) is never handed out.
 */
export async function issueServiceToken(deps: ServiceDeps, input: IssueTokenInput): Promise<{ token: string; record: GatewayToken }> {
  const secrets = deps.config.GATEWAY_JWT_SECRET;
  if (!secrets?.length) throw new TokensDisabledError();
  const expiresAt = new Date(Date.now() + input.expiresInDays * 86_400_000);
  const routes = input.routes?.length ? input.routes : [`/${input.project}/`];
  const signed = await signServiceToken(secrets, deps.config.GATEWAY_JWT_ISSUER, {
    project: input.project,
    service: input.service,
    routes,
    expiresAt,
  });
  const record = await inTransaction(deps.pool, async (db) => {
    const inserted = await deps.tokenStore.insert(
      {
        jti: signed.jti,
        project: input.project,
        service: input.service,
        description: input.description ?? null,
        routes,
        kid: signed.kid,
        expiresAt: new Date(Math.floor(expiresAt.getTime() / 1000) * 1000),
        createdBy: input.createdBy,
      },
      db,
    );
    const details = {
      jti: inserted.jti,
      project: inserted.project,
      service: inserted.service,
      routes: inserted.routes,
      expires_at: inserted.expiresAt.toISOString(),
    };
    await audit.record({ actor: input.createdBy, action: 'token.created', keyId: null, userId: null, details }, db);
    return inserted;
  });
  return { token: signed.token, record };
}

/**
 * Revokes a token with its audit row in one transaction, then tells every replica; a failed
 * publish is logged (the revocation stands; caches are bounded by their TTL).
 */
export async function revokeServiceToken(deps: ServiceDeps, jti: string, by: string, reason: string | null): Promise<GatewayToken | null> {
  const record = await inTransaction(deps.pool, async (db) => {
    const revoked = await deps.tokenStore.revoke(jti, by, reason, db);
    if (revoked) await audit.record({ actor: by, action: 'token.revoked', keyId: null, userId: null, details: { jti, reason } }, db);
    return revoked;
  });
  if (record) await afterCommit(deps.logger, { jti }, () => deps.keyEvents.tokenChanged(jti));
  return record;
}
