import { HttpError, type ErrorCode } from '@tollgate/common';
import type { ServiceDeps } from '../deps.js';
import { extractCredential } from '../domain/credentials.js';
import { checkKeyShape } from '../domain/key-format.js';
import { safeEqual } from '../domain/key-hash.js';
import { keyState } from '../domain/api-key.js';
import { effectiveScopes, MANAGE_SCOPE, permissionSets, scopeGrants, SERVICE_ROUTE_SCOPE } from '../domain/scopes.js';
import { bearerChallenge, unauthorizedChallenge } from '../domain/bearer-challenge.js';

/** Who is calling: an operator with an admin token, or a key owner with a keys:manage key. */
export type Actor = { kind: 'admin' } | { kind: 'key'; keyId: string; userId: string; scopes: string[] };

/** How the actor is written in the audit log: never the token or key itself. */
export function actorLabel(actor: Actor): string {
  return actor.kind === 'admin' ? 'admin' : `key:${actor.keyId}`;
}

function unauthorized(error: ErrorCode, message: string): HttpError {
  return new HttpError(401, error, message, undefined, { 'www-authenticate': unauthorizedChallenge(error) });
}

/**
 * Authenticates a management call from its headers. Credentials are read as at the gateway
 * (`Authorization: Bearer …` or `X-API-Key`). Admin tokens are compared in constant time with
 * every configured token (so tokens rotate by listing old and new together). A Tollgate key must
 * be active and hold `keys:manage` explicitly: `*` (full_access) does not grant it, so a key
 * made for calling an API never manages keys by accident.
 */
export async function authenticate(deps: ServiceDeps, headers: Record<string, string | string[] | undefined>): Promise<Actor> {
  const flat: Record<string, string | undefined> = {};
  for (const name of ['authorization', 'x-api-key']) {
    const v = headers[name];
    flat[name] = Array.isArray(v) ? v.join(',') : v;
  }
  const cred = extractCredential(flat);
  if (!cred.ok) {
    throw unauthorized(
      cred.reason === 'missing' ? 'missing_credential' : 'invalid_credential',
      cred.reason === 'missing' ? 'The management API needs "Authorization: Bearer <admin token or keys:manage key>"' : cred.message,
    );
  }
  let isAdmin = false;
  for (const token of deps.config.ADMIN_TOKEN) isAdmin = safeEqual(cred.value, token) || isAdmin;
  if (isAdmin) return { kind: 'admin' };

  const accepted = deps.config.ACCEPTED_KEY_PREFIXES ?? [deps.config.KEY_PREFIX];
  if (checkKeyShape(cred.value, accepted) !== null) {
    throw unauthorized('invalid_credential', 'The credential is neither an admin token nor a Tollgate key');
  }
  const match = await deps.keyStore.findByHash(deps.hasher.candidates(cred.value));
  if (!match) throw unauthorized('invalid_api_key', 'The API key is not valid (unknown key)');
  const state = keyState(match.key);
  // A billing-suspended owner may still manage (and look at) its keys; only the gateway refuses it.
  if (state !== 'active' && state !== 'suspended') throw unauthorized(`key_${state}`, `The API key is ${state}`);
  const scopes = effectiveScopes(match.key, permissionSets(deps.config.PERMISSION_SETS));
  if (!scopes.includes(MANAGE_SCOPE)) {
    throw new HttpError(403, 'insufficient_scope', `This API key lacks the "${MANAGE_SCOPE}" scope needed to manage keys`, undefined, {
      'www-authenticate': bearerChallenge({ error: 'insufficient_scope', scope: MANAGE_SCOPE }),
    });
  }
  return { kind: 'key', keyId: match.key.id, userId: match.key.userId, scopes };
}

/**
 * Owners act only on their own user's keys. A key addressed by id that belongs to someone else
 * answers 404 (as if it did not exist, so ids cannot be probed); a call naming another user
 * answers 403 (the caller chose that user id; nothing is revealed).
 */
export function assertMayActFor(actor: Actor, userId: string): void {
  if (actor.kind === 'key' && actor.userId !== userId) {
    throw new HttpError(403, 'forbidden', 'A keys:manage key acts only on its own user’s keys');
  }
}

export function ownsKey(actor: Actor, keyUserId: string): boolean {
  return actor.kind === 'admin' || actor.userId === keyUserId;
}

/**
 * Whether `held` scopes already grant `wanted`: owners may not mint keys more powerful than
 * their own (a read-only manager cannot create a full_access key). A path scope covers another
 * when its prefix does, by the gateway's own rule (path-prefix.ts). `service_route:` scopes
 * open service-token-only routes, which the operator decides: no owner key covers them, not
 * even one holding `*` or the same scope.
 */
export function scopeCovered(held: readonly string[], wanted: string): boolean {
  if (wanted === SERVICE_ROUTE_SCOPE || wanted.startsWith(`${SERVICE_ROUTE_SCOPE}:`)) return false;
  return scopeGrants(held, wanted);
}
