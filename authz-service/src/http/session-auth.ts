import { createHmac } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { HttpError } from '@tollgate/common';
import type { ServiceDeps } from '../deps.js';
import { keyState } from '../domain/api-key.js';
import { safeEqual } from '../domain/key-hash.js';
import { effectiveScopes, permissionSets } from '../domain/scopes.js';
import { SessionStore, type SessionRow } from '../stores/session-store.js';
import { authenticate, type Actor } from './auth.js';
import { MANAGE_SCOPE } from '../domain/scopes.js';

export const SESSION_COOKIE = 'tollgate_session';
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The tollgate_session cookie's value, if the request carries one. */
export function sessionCookie(request: FastifyRequest): string | null {
  const header = request.headers.cookie;
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim() || null;
  }
  return null;
}

/**
 * The session's CSRF token: derived from the cookie's value with the key-hash secret, so nothing
 * more is stored, it changes with every session, and it cannot be computed without the server's
 * secret (a cross-site page that cannot read the cookie cannot produce it either).
 */
export function csrfTokenFor(deps: ServiceDeps, sessionToken: string): string {
  return createHmac('sha256', deps.config.KEY_HASH_SECRETS[0]!).update(`csrf:${sessionToken}`).digest('base64url');
}

const invalidSession = () =>
  new HttpError(401, 'invalid_session', 'The console session is unknown, expired or signed out; sign in again', undefined, {
    'www-authenticate': 'Bearer realm="tollgate"',
  });

/** Routes about the session itself read only the cookie: a bearer credential has no session. */
export function requireSessionCookie(request: FastifyRequest): void {
  if (!sessionCookie(request)) throw invalidSession();
}

export interface ResolvedSession {
  row: SessionRow;
  actor: Actor;
}

/**
 * The session behind a cookie, as the actor it was created from: admin, or the owner key's user
 * with the key's scopes now. An owner key that is no longer active or lost keys:manage ends all
 * its sessions (401), so revoking the key signs its console users out.
 */
export async function resolveSession(deps: ServiceDeps, token: string): Promise<ResolvedSession> {
  const store = new SessionStore(deps.pool);
  const row = await store.touch(token, deps.config.SESSION_IDLE_TIMEOUT_MS);
  if (!row) throw invalidSession();
  if (row.kind === 'admin') return { row, actor: { kind: 'admin' } };
  const key = await deps.keyStore.getById(row.keyId!);
  const scopes = key ? effectiveScopes(key, permissionSets(deps.config.PERMISSION_SETS)) : [];
  if (!key || keyState(key) !== 'active' || !scopes.includes(MANAGE_SCOPE)) {
    await store.deleteForKey(row.keyId!);
    throw invalidSession();
  }
  return { row, actor: { kind: 'key', keyId: key.id, userId: key.userId, scopes } };
}

/**
 * Who is calling a management route: a bearer credential if the request carries one (unchanged),
 * otherwise the session cookie. A state-changing call on a cookie must also carry X-CSRF-Token.
 */
export async function authenticateRequest(deps: ServiceDeps, request: FastifyRequest): Promise<Actor> {
  const token = sessionCookie(request);
  if (!token || request.headers.authorization !== undefined || request.headers['x-api-key'] !== undefined) {
    return authenticate(deps, request.headers);
  }
  const { actor } = await resolveSession(deps, token);
  if (STATE_CHANGING.has(request.method)) assertCsrf(deps, request, token);
  return actor;
}

export function assertCsrf(deps: ServiceDeps, request: FastifyRequest, token: string): void {
  const sent = request.headers['x-csrf-token'];
  if (typeof sent !== 'string' || !safeEqual(sent, csrfTokenFor(deps, token))) {
    throw new HttpError(403, 'csrf_failed', 'A state-changing call with the session cookie needs the header X-CSRF-Token: <csrf_token of the session>');
  }
}
