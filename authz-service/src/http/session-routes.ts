import { HttpError } from '@tollgate/common';
import type { FastifyRequest } from 'fastify';
import type { ServiceDeps } from '../deps.js';
import { newSessionToken, SessionStore, type SessionRow } from '../stores/session-store.js';
import { authenticate } from './auth.js';
import { defineRoute, type RouteResponse, type RouteSpec } from './routes.js';
import { ErrorResponse } from './schemas/common.js';
import { CreateSessionBody, SessionRecord } from './schemas/session.js';
import { assertCsrf, csrfTokenFor, resolveSession, SESSION_COOKIE, sessionCookie } from './session-auth.js';
import { SigninLimiter } from './signin-limiter.js';

const TAG = 'session';
const error = (description: string): RouteResponse => ({ description, schema: ErrorResponse });

/** Secure only over HTTPS (TLS here, or a proxy saying so), so plain-HTTP development still signs in. */
function isHttps(request: FastifyRequest): boolean {
  const proto = request.headers['x-forwarded-proto'];
  const first = (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim().toLowerCase();
  return first === 'https' || 'encrypted' in request.raw.socket;
}

function cookie(request: FastifyRequest, value: string, maxAgeSeconds: number): string {
  return [`${SESSION_COOKIE}=${value}`, 'HttpOnly', 'SameSite=Strict', 'Path=/', `Max-Age=${maxAgeSeconds}`, ...(isHttps(request) ? ['Secure'] : [])].join(
    '; ',
  );
}

function sessionBody(deps: ServiceDeps, token: string, row: SessionRow, scopes: readonly string[]) {
  const idleEnd = Math.min(row.lastSeenAt.getTime() + deps.config.SESSION_IDLE_TIMEOUT_MS, row.expiresAt.getTime());
  return {
    kind: row.kind,
    user_id: row.userId,
    scopes: [...scopes],
    expires_at: row.expiresAt.toISOString(),
    idle_expires_at: new Date(idleEnd).toISOString(),
    csrf_token: csrfTokenFor(deps, token),
  };
}

/** Console sign-in (docs/management-api.md, "Console sessions"): a cookie session made from a token. */
export function sessionRoutes(deps: ServiceDeps): RouteSpec[] {
  // Built per call: route builders read only config (openapi-offline.ts renders them without a pool).
  const store = () => new SessionStore(deps.pool);
  const limiter = new SigninLimiter(deps.config.SESSION_SIGNIN_FAILURES_PER_MINUTE);
  return [
    defineRoute({
      method: 'POST',
      url: '/api/session',
      operationId: 'createSession',
      tag: TAG,
      authentication: 'none',
      summary: 'Sign in: a session cookie from an admin token or a keys:manage key',
      description:
        'Sets `tollgate_session` (HttpOnly, SameSite=Strict, Path=/, Secure over HTTPS). Repeated failures from one address answer 429 with Retry-After.',
      body: CreateSessionBody,
      responses: {
        201: { description: 'Signed in', schema: SessionRecord },
        400: error('No token in the body'),
        401: error('invalid_credentials: the token is not an admin token or an active keys:manage key'),
        429: error('too_many_failed_attempts: too many failed sign-ins from this address this minute'),
      },
      handler: async ({ body, request, reply }) => {
        const wait = limiter.retryAfterSeconds(request.ip);
        if (wait > 0) {
          throw new HttpError(429, 'too_many_failed_attempts', 'Too many failed sign-ins from this address; retry later', undefined, {
            'retry-after': String(wait),
          });
        }
        let actor: Awaited<ReturnType<typeof authenticate>>;
        try {
          actor = await authenticate(deps, { authorization: `Bearer ${body.token}` });
        } catch (err) {
          // A wrong token, a key without keys:manage and a revoked key look alike: nothing is revealed.
          if (!(err instanceof HttpError) || err.status >= 500) throw err;
          limiter.failed(request.ip);
          throw new HttpError(401, 'invalid_credentials', 'The token is not an admin token or an active API key with the keys:manage scope', undefined, {
            'www-authenticate': 'Bearer realm="tollgate"',
          });
        }
        const token = newSessionToken();
        const row = await store().create(token, {
          kind: actor.kind === 'admin' ? 'admin' : 'owner',
          keyId: actor.kind === 'key' ? actor.keyId : null,
          userId: actor.kind === 'key' ? actor.userId : null,
          maxAgeMs: deps.config.SESSION_MAX_AGE_MS,
        });
        void reply.header('set-cookie', cookie(request, token, Math.floor(deps.config.SESSION_MAX_AGE_MS / 1000)));
        void reply.header('cache-control', 'no-store');
        return { status: 201, body: sessionBody(deps, token, row, actor.kind === 'admin' ? ['*'] : actor.scopes) };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/session',
      operationId: 'getSession',
      tag: TAG,
      authentication: 'session',
      summary: 'The current console session (restarts its idle clock)',
      responses: {
        200: { description: 'Signed in', schema: SessionRecord },
        401: error('No session cookie, or the session is unknown, expired or signed out'),
      },
      handler: async ({ request, reply }) => {
        const token = sessionCookie(request)!;
        const { row, actor } = await resolveSession(deps, token);
        void reply.header('cache-control', 'no-store');
        return { status: 200, body: sessionBody(deps, token, row, actor.kind === 'admin' ? ['*'] : actor.scopes) };
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/api/session',
      operationId: 'deleteSession',
      tag: TAG,
      authentication: 'session',
      summary: 'Sign out: the session is deleted and the cookie cleared',
      responses: {
        204: { description: 'Signed out' },
        401: error('No session cookie, or the session is unknown, expired or signed out'),
        403: error('csrf_failed: X-CSRF-Token is missing or wrong'),
      },
      handler: async ({ request, reply }) => {
        const token = sessionCookie(request)!;
        await resolveSession(deps, token);
        assertCsrf(deps, request, token);
        await store().delete(token);
        void reply.header('set-cookie', cookie(request, '', 0));
        return { status: 204, body: undefined };
      },
    }),
  ];
}
