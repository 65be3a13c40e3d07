import type { ServiceDeps } from '../deps.js';
import { signServiceToken } from '../domain/service-token.js';
import type { GatewayToken } from '../stores/token-store.js';

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

/** Signs a token and records it in the registry, in one step: a token not recorded is never handed out. */
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
  const record = await deps.tokenStore.insert({
    jti: signed.jti,
    project: input.project,
    service: input.service,
    description: input.description ?? null,
    routes,
    kid: signed.kid,
    expiresAt: new Date(Math.floor(expiresAt.getTime() / 1000) * 1000),
    createdBy: input.createdBy,
  });
  return { token: signed.token, record };
}

export async function revokeServiceToken(deps: ServiceDeps, jti: string, by: string, reason: string | null): Promise<GatewayToken | null> {
  const record = await deps.tokenStore.revoke(jti, by, reason);
  if (record) await deps.keyEvents.tokenChanged(jti);
  return record;
}
