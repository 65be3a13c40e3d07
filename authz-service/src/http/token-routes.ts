import { HttpError } from '@tollgate/common';
import type { ServiceDeps } from '../deps.js';
import type { GatewayToken } from '../stores/token-store.js';
import { issueServiceToken, revokeServiceToken, TokensDisabledError } from '../tokens/token-service.js';
import { actorLabel, type Actor } from './auth.js';
import { notFound } from './errors.js';
import { defineRoute, type RouteResponse, type RouteSpec } from './routes.js';
import { ErrorResponse } from './schemas/common.js';
import { CreateTokenBody, RevokeTokenBody, TokenJtiParams, TokenList, TokenListQuery, TokenRecord, TokenWithSecret } from './schemas/tokens.js';

const error = (description: string): RouteResponse => ({ description, schema: ErrorResponse });
const common = {
  400: error('The request does not match the schema'),
  401: error('Missing or invalid credential'),
  403: error('Only an admin token manages service tokens'),
};
const TAG = 'service tokens';

export function requireAdmin(actor: Actor): void {
  if (actor.kind !== 'admin') throw new HttpError(403, 'forbidden', 'Service tokens are managed with an admin token only');
}

function tokenJson(t: GatewayToken) {
  const status = t.revokedAt || !t.isActive ? 'revoked' : t.expiresAt.getTime() <= Date.now() ? 'expired' : 'active';
  return {
    object: 'service_token' as const,
    jti: t.jti,
    project: t.project,
    service: t.service,
    description: t.description,
    routes: t.routes,
    kid: t.kid,
    status,
    created_at: t.createdAt.toISOString(),
    created_by: t.createdBy,
    expires_at: t.expiresAt.toISOString(),
    last_used_at: t.lastUsedAt?.toISOString() ?? null,
    revoked_at: t.revokedAt?.toISOString() ?? null,
    revoked_by: t.revokedBy,
    revoked_reason: t.revokedReason,
  };
}

/** Seed 001's token registry over HTTP: create (token shown once), list, unused, revoke. */
export function tokenRoutes(deps: ServiceDeps): RouteSpec[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/api/tokens',
      operationId: 'createServiceToken',
      tag: TAG,
      summary: 'Issue a service token',
      description: 'Signs a token for a project/service with the newest GATEWAY_JWT_SECRET and records it. The token is returned this once.',
      body: CreateTokenBody,
      responses: {
        201: { description: 'Issued', schema: TokenWithSecret },
        ...common,
        409: error('Service tokens are off (GATEWAY_JWT_SECRET unset)'),
      },
      handler: async ({ body, actor }) => {
        requireAdmin(actor);
        try {
          const { token, record } = await issueServiceToken(deps, {
            project: body.project,
            service: body.service,
            description: body.description ?? null,
            routes: body.routes,
            expiresInDays: body.expires_in_days,
            createdBy: actorLabel(actor),
          });
          return { status: 201, body: { ...tokenJson(record), token } };
        } catch (err) {
          if (err instanceof TokensDisabledError) throw new HttpError(409, 'tokens_disabled', err.message);
          throw err;
        }
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/tokens',
      operationId: 'listServiceTokens',
      tag: TAG,
      summary: 'List service tokens (active, unused for N days, by project)',
      query: TokenListQuery,
      responses: { 200: { description: 'Tokens, newest first (at most 1,000)', schema: TokenList }, ...common },
      handler: async ({ query, actor }) => {
        requireAdmin(actor);
        const list = await deps.tokenStore.list({ active: query.active, unusedDays: query.unused_days, project: query.project });
        return { status: 200, body: { object: 'list', data: list.map(tokenJson) } };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/tokens/:jti',
      operationId: 'getServiceToken',
      tag: TAG,
      summary: 'Get one service token’s registry entry',
      params: TokenJtiParams,
      responses: { 200: { description: 'The token', schema: TokenRecord }, ...common, 404: error('No such token') },
      handler: async ({ params, actor }) => {
        requireAdmin(actor);
        const t = await deps.tokenStore.get(params.jti);
        if (!t) throw notFound('service token');
        return { status: 200, body: tokenJson(t) };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/api/tokens/:jti/revoke',
      operationId: 'revokeServiceToken',
      tag: TAG,
      summary: 'Revoke a service token (every replica refuses it within a second)',
      params: TokenJtiParams,
      body: RevokeTokenBody,
      responses: { 200: { description: 'Revoked', schema: TokenRecord }, ...common, 404: error('No such token') },
      handler: async ({ params, body, actor }) => {
        requireAdmin(actor);
        const t = await revokeServiceToken(deps, params.jti, actorLabel(actor), body.reason ?? null);
        if (!t) throw notFound('service token');
        return { status: 200, body: tokenJson(t) };
      },
    }),
  ];
}
