import type { FastifyRequest } from 'fastify';
import { HttpError } from '@tollgate/common';
import { BUILTIN_PERMISSION_SETS } from '../domain/scopes.js';
import { IDEMPOTENCY_KEY_PATTERN, type IdempotencyRequest } from './idempotency.js';
import type { KeyManagement } from './key-management.js';
import { defineRoute, type RouteResponse, type RouteSpec } from './routes.js';
import { ErrorResponse, KeyIdParams, KEYS_OWNER_RULE, KeysOwnerParams } from './schemas/common.js';
import {
  AllKeysQuery,
  CreateKeyBody,
  DeletedKey,
  ExtendKeyBody,
  FUTURE_EXPIRY_RULE,
  KeyList,
  KeyRecord,
  KeyWithSecret,
  PERMISSION_SET_RULE,
  PermissionSetList,
  RevokeKeyBody,
  RotateKeyBody,
  UpdateKeyBody,
  UserKeysQuery,
} from './schemas/keys.js';

const IDEMPOTENCY_KEY_RE = new RegExp(IDEMPOTENCY_KEY_PATTERN);
// /api/keys/<x> is a user's keys (GET) or, when <x> is a key id, that key (PATCH, DELETE).
const onKeyPath = { description: '<x> is a key id: this is that key’s path (Allow: DELETE, PATCH)', schema: ErrorResponse } satisfies RouteResponse;
const onUserPath = { description: '<x> is not a key id: this is a user’s path (Allow: GET, HEAD)', schema: ErrorResponse } satisfies RouteResponse;

/** The optional Idempotency-Key of a POST, bound to the method, route, target and body. */
function idempotencyOf(request: FastifyRequest): IdempotencyRequest | undefined {
  const raw = request.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !IDEMPOTENCY_KEY_RE.test(raw)) {
    throw new HttpError(400, 'invalid_request', 'Idempotency-Key must be 1-255 visible ASCII characters');
  }
  return { key: raw, fingerprint: { method: request.method, url: request.url.split('?')[0], body: request.body ?? {} } };
}

const error = (description: string): RouteResponse => ({ description, schema: ErrorResponse });
const common = {
  400: error('Malformed JSON, or the request does not match the schema (unknown field, out-of-range value, bad id)'),
  401: error('Missing or invalid credential (admin token or keys:manage key)'),
  403: error(
    'The credential may not do this (no keys:manage scope, another user, scopes beyond its own, or field_not_allowed: a field only an admin token sets)',
  ),
};
const onKey = { ...common, 404: error('No such key (or it belongs to another user)') };
const TAG = 'keys';

/** Seed 003's three endpoints and seed 004's lifecycle, over one resource: the key. */
export function keyRoutes(keys: KeyManagement): RouteSpec[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/api/keys',
      operationId: 'createKey',
      tag: TAG,
      summary: 'Create a key',
      description:
        'Answers 201 with the key record and `key`, the plaintext, shown this once. With neither scopes nor permission_set the key gets DEFAULT_PERMISSION_SET. ' +
        'With an Idempotency-Key, a retry answers the first record again (without `key`) and creates nothing. ' +
        'A keys:manage owner key is bound by the owner field policy (docs/management-api.md): its new key’s limits, expiry, stripe_customer_id and metadata.byok are at most (and by default) those of the owner key; otherwise 403 field_not_allowed. ' +
        `${FUTURE_EXPIRY_RULE} ${PERMISSION_SET_RULE}`,
      body: CreateKeyBody,
      idempotent: true,
      responses: {
        201: { description: 'Created (or replayed: header Idempotent-Replayed: true, no `key`)', schema: KeyWithSecret },
        ...common,
        409: error('A request with this Idempotency-Key is still in progress'),
        422: error('Unknown permission set, or an Idempotency-Key reused with another request'),
      },
      handler: async ({ body, actor, request }) => keys.create(actor, body, idempotencyOf(request)),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/keys',
      operationId: 'listKeys',
      tag: TAG,
      summary: 'List keys across users (an owner key sees only its own user’s)',
      query: AllKeysQuery,
      responses: { 200: { description: 'A page of keys, newest first', schema: KeyList }, ...common },
      handler: async ({ query, actor }) => ({
        status: 200,
        body: await keys.list(
          actor,
          { userId: query.user_id, active: query.active, expiringWithinDays: query.expiring_within_days, search: query.q, status: query.status },
          query,
        ),
      }),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/keys/:user_id',
      operationId: 'listUserKeys',
      tag: TAG,
      summary: 'List one user’s keys (seed 003)',
      description: KEYS_OWNER_RULE,
      params: KeysOwnerParams,
      query: UserKeysQuery,
      responses: { 200: { description: 'A page of keys, newest first', schema: KeyList }, ...common, 405: onKeyPath },
      handler: async ({ params, query, actor }) => ({
        status: 200,
        body: await keys.list(actor, { userId: params.user_id, active: query.active, expiringWithinDays: query.expiring_within_days }, query),
      }),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/keys/by-id/:id',
      operationId: 'getKey',
      tag: TAG,
      summary: 'Get one key by id',
      description: '`GET /api/keys/<x>` always lists user <x>’s keys (seed 003), so one key is read under /by-id/.',
      params: KeyIdParams,
      responses: { 200: { description: 'The key', schema: KeyRecord }, ...onKey },
      handler: async ({ params, actor }) => ({ status: 200, body: await keys.get(actor, params.id) }),
    }),
    defineRoute({
      method: 'PATCH',
      url: '/api/keys/:id',
      operationId: 'updateKey',
      tag: TAG,
      summary: 'Update a key’s name, description, limits, scopes, permission set, metadata, Stripe customer or active flag',
      description:
        'A keys:manage owner key is bound by the owner field policy (docs/management-api.md): limits only lower, scopes only narrower, stripe_customer_id and metadata.byok unchanged, is_active true only after its own suspension; otherwise 403 field_not_allowed naming `field`. ' +
        PERMISSION_SET_RULE,
      params: KeyIdParams,
      body: UpdateKeyBody,
      responses: {
        200: { description: 'The updated key', schema: KeyRecord },
        ...onKey,
        405: onUserPath,
        409: error('The key is revoked'),
        422: error('Unknown permission set'),
      },
      handler: async ({ params, body, actor }) => keys.update(actor, params.id, body),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/keys/:id/revoke',
      operationId: 'revokeKey',
      tag: TAG,
      summary: 'Revoke a key, permanently (takes effect at every replica within a second)',
      description: 'Revoking a revoked key answers 200 with the key unchanged.',
      params: KeyIdParams,
      body: RevokeKeyBody,
      idempotent: true,
      responses: { 200: { description: 'The revoked key', schema: KeyRecord }, ...onKey, 422: error('Idempotency-Key reused') },
      handler: async ({ params, body, actor, request }) => keys.revoke(actor, params.id, body.reason, idempotencyOf(request)),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/keys/:id/extend',
      operationId: 'extendKey',
      tag: TAG,
      summary: 'Set or extend a key’s expiry',
      description:
        'A keys:manage owner key is bound by the owner field policy (docs/management-api.md): only an earlier expiry; removing or extending one is 403 field_not_allowed. ' +
        FUTURE_EXPIRY_RULE,
      params: KeyIdParams,
      body: ExtendKeyBody,
      idempotent: true,
      responses: {
        200: { description: 'The key with its new expiry', schema: KeyRecord },
        ...onKey,
        409: error('The key is revoked'),
        422: error('Idempotency-Key reused'),
      },
      handler: async ({ params, body, actor, request }) => keys.extend(actor, params.id, body, idempotencyOf(request)),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/keys/:id/rotate',
      operationId: 'rotateKey',
      tag: TAG,
      summary: 'Give a key a new secret; the old one keeps working for the grace period',
      description:
        'Answers the key and `key`, the new plaintext, once. A secret from an earlier rotation still in its grace period stops working at once. ' +
        'Nothing but the secret changes. An owner key may ask for grace_seconds up to ROTATION_GRACE_SECONDS (else 403 field_not_allowed).',
      params: KeyIdParams,
      body: RotateKeyBody,
      idempotent: true,
      responses: {
        200: { description: 'The key with its new secret', schema: KeyWithSecret },
        ...onKey,
        409: error('The key is revoked'),
        422: error('Idempotency-Key reused'),
      },
      handler: async ({ params, body, actor, request }) => keys.rotate(actor, params.id, body.grace_seconds, idempotencyOf(request)),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/api/keys/:id',
      operationId: 'deleteKey',
      tag: TAG,
      summary: 'Delete a key (seed 003); its audit history stays',
      params: KeyIdParams,
      responses: { 200: { description: 'Deleted', schema: DeletedKey }, ...onKey, 405: onUserPath },
      handler: async ({ params, actor }) => keys.remove(actor, params.id),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/permission-sets',
      operationId: 'listPermissionSets',
      tag: 'permission sets',
      summary: 'Permission sets: read_only, full_access and those in PERMISSION_SETS',
      responses: { 200: { description: 'Every permission set and its scopes', schema: PermissionSetList }, ...common },
      handler: async () => ({
        status: 200,
        body: {
          object: 'list',
          default: keys.defaultPermissionSet,
          data: Object.entries(keys.sets).map(([name, scopes]) => ({ name, scopes: [...scopes], builtin: name in BUILTIN_PERMISSION_SETS })),
        },
      }),
    }),
  ];
}
