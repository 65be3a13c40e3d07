import { HttpError } from '@tollgate/common';
import { isMissingTable, type OutOfRotation, readOutOfRotation } from '../check/operator-credential-health.js';
import type { ServiceDeps } from '../deps.js';
import type { OperatorCredentialMeta } from '../vault/operator-credential-store.js';
import { actorLabel, type Actor } from './auth.js';
import { notFound } from './errors.js';
import {
  CreateOperatorCredentialBody,
  DeletedOperatorCredential,
  OperatorCredential,
  OperatorCredentialList,
  OperatorCredentialParams,
  RotateOperatorCredentialBody,
} from './schemas/operator-credentials.js';
import { defineRoute, type RouteResponse, type RouteSpec } from './routes.js';
import { ErrorResponse } from './schemas/common.js';
import { vaultCall } from './vault-routes.js';

const error = (description: string): RouteResponse => ({ description, schema: ErrorResponse });
const common = {
  400: error('The request does not match the schema'),
  401: error('Missing or invalid credential'),
  403: error('Operator credentials are for the admin token only'),
  409: error('The vault is off (VAULT_MASTER_KEYS unset)'),
};
const TAG = 'operator credentials';

/** A credential just stored or rotated is in rotation until its provider rejects it again. */
function metaJson(m: OperatorCredentialMeta, out?: OutOfRotation) {
  return {
    object: 'operator_credential' as const,
    id: m.id,
    provider: m.provider,
    label: m.label,
    fingerprint: m.fingerprint,
    master_key_id: m.masterKeyId,
    created_at: m.createdAt.toISOString(),
    updated_at: m.updatedAt.toISOString(),
    in_rotation: out === undefined,
    rejected: out ? { status: out.status, last_seen_at: out.rejectedAt.toISOString() } : null,
  };
}

function adminOnly(actor: Actor): void {
  if (actor.kind !== 'admin') throw new HttpError(403, 'forbidden', 'Operator credentials are managed with the admin token only');
}

/** The managed phase: the operator's own provider accounts, several per provider (docs/vault.md). */
export function operatorCredentialRoutes(deps: ServiceDeps): RouteSpec[] {
  // Read when a handler runs: building the routes (the offline OpenAPI document) needs no vault.
  const svc = () => deps.operatorCredentials;
  return [
    defineRoute({
      method: 'POST',
      url: '/api/operator-credentials',
      operationId: 'createOperatorCredential',
      tag: TAG,
      summary: 'Store a new operator credential for a provider (admin only)',
      description: 'Keys granted the provider in metadata.managed_providers use these when their user has none of their own.',
      body: CreateOperatorCredentialBody,
      responses: { 201: { description: 'Stored', schema: OperatorCredential }, ...common },
      handler: async ({ body, actor }) => {
        adminOnly(actor);
        const meta = await vaultCall(() => svc().create(body.provider, body.label, body.secret, actorLabel(actor)));
        return { status: 201, body: metaJson(meta) };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/operator-credentials',
      operationId: 'listOperatorCredentials',
      tag: TAG,
      summary: 'List the operator credentials (metadata and whether each is in rotation; admin only)',
      responses: { 200: { description: 'Metadata of each operator credential', schema: OperatorCredentialList }, ...common },
      handler: async ({ actor }) => {
        adminOnly(actor);
        const list = await svc().list();
        const out = await readOutOfRotation(deps.pool, deps.config.OPERATOR_CREDENTIAL_REJECT_STATUSES, new Map(list.map((c) => [c.id, c]))).catch(
          (err: unknown) => {
            // Without billing-sidecar's usage tables nothing records rejections: all are in rotation.
            if (isMissingTable(err)) return new Map<string, OutOfRotation>();
            throw err;
          },
        );
        return { status: 200, body: { object: 'list', data: list.map((c) => metaJson(c, out.get(c.id))) } };
      },
    }),
    defineRoute({
      method: 'PUT',
      url: '/api/operator-credentials/:credential_id',
      operationId: 'rotateOperatorCredential',
      tag: TAG,
      summary: 'Replace an operator credential’s secret (rotation; admin only)',
      params: OperatorCredentialParams,
      body: RotateOperatorCredentialBody,
      responses: { 200: { description: 'Replaced', schema: OperatorCredential }, ...common, 404: error('No operator credential with this id') },
      handler: async ({ params, body, actor }) => {
        adminOnly(actor);
        const meta = await vaultCall(() => svc().rotate(params.credential_id, body.secret, body.label, actorLabel(actor)));
        if (!meta) throw notFound('operator credential');
        return { status: 200, body: metaJson(meta) };
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/api/operator-credentials/:credential_id',
      operationId: 'deleteOperatorCredential',
      tag: TAG,
      summary: 'Delete an operator credential (admin only)',
      params: OperatorCredentialParams,
      responses: { 200: { description: 'Deleted', schema: DeletedOperatorCredential }, ...common, 404: error('No operator credential with this id') },
      handler: async ({ params, actor }) => {
        adminOnly(actor);
        const meta = await svc().delete(params.credential_id, actorLabel(actor));
        if (!meta) throw notFound('operator credential');
        return { status: 200, body: { object: 'operator_credential', id: meta.id, provider: meta.provider, deleted: true } };
      },
    }),
  ];
}
