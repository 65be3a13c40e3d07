import { HttpError } from '@tollgate/common';
import type { ServiceDeps } from '../deps.js';
import { AuditStore } from '../stores/audit-store.js';
import { VaultDisabledError } from '../vault/vault-service.js';
import { rewrapWebhookSecrets } from '../webhooks/secret-rewrap.js';
import type { ProviderKeyMeta } from '../vault/vault-store.js';
import { actorLabel, assertMayActFor } from './auth.js';
import { notFound } from './errors.js';
import { defineRoute, type RouteResponse, type RouteSpec } from './routes.js';
import { ErrorResponse } from './schemas/common.js';
import { DeletedProviderKey, ProviderKeyList, ProviderKeyRecord, ProviderParams, RewrapResult, SetProviderKeyBody, VaultUserParams } from './schemas/vault.js';

const error = (description: string): RouteResponse => ({ description, schema: ErrorResponse });
const common = {
  400: error('The request does not match the schema'),
  401: error('Missing or invalid credential'),
  403: error('A keys:manage key reaches only its own user’s vault'),
  409: error('The vault is off (VAULT_MASTER_KEYS unset)'),
};
const TAG = 'provider keys';

function metaJson(m: ProviderKeyMeta) {
  return {
    object: 'provider_key' as const,
    user_id: m.userId,
    provider: m.provider,
    fingerprint: m.fingerprint,
    master_key_id: m.masterKeyId,
    created_at: m.createdAt.toISOString(),
    updated_at: m.updatedAt.toISOString(),
  };
}

export async function vaultCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof VaultDisabledError) throw new HttpError(409, 'vault_disabled', err.message);
    throw err;
  }
}

/** Seeds 000/002's per-user provider credentials: write-only secrets, metadata out. */
export function vaultRoutes(deps: ServiceDeps): RouteSpec[] {
  const audit = new AuditStore();
  return [
    defineRoute({
      method: 'PUT',
      url: '/api/users/:user_id/provider-keys/:provider',
      operationId: 'setProviderKey',
      tag: TAG,
      summary: 'Store (or replace) a user’s credential for a provider',
      description: 'Provider names are case-insensitive. The secret is encrypted at rest and never returned.',
      params: ProviderParams,
      body: SetProviderKeyBody,
      responses: {
        201: { description: 'Stored', schema: ProviderKeyRecord },
        200: { description: 'Replaced', schema: ProviderKeyRecord },
        ...common,
      },
      handler: async ({ params, body, actor }) => {
        assertMayActFor(actor, params.user_id);
        if (!deps.vault.envelope) throw new HttpError(409, 'vault_disabled', 'the provider-key vault is off: set VAULT_MASTER_KEYS');
        const { meta, created } = await vaultCall(() => deps.vault.set(params.user_id, params.provider, body.secret, actorLabel(actor)));
        return { status: created ? 201 : 200, body: metaJson(meta) };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/users/:user_id/provider-keys',
      operationId: 'listProviderKeys',
      tag: TAG,
      summary: 'List a user’s stored provider credentials (metadata only)',
      params: VaultUserParams,
      responses: { 200: { description: 'Metadata of each stored credential', schema: ProviderKeyList }, ...common },
      handler: async ({ params, actor }) => {
        assertMayActFor(actor, params.user_id);
        return { status: 200, body: { object: 'list', data: (await deps.vault.list(params.user_id)).map(metaJson) } };
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/api/users/:user_id/provider-keys/:provider',
      operationId: 'deleteProviderKey',
      tag: TAG,
      summary: 'Delete a user’s credential for a provider',
      params: ProviderParams,
      responses: { 200: { description: 'Deleted', schema: DeletedProviderKey }, ...common, 404: error('Nothing stored for this provider') },
      handler: async ({ params, actor }) => {
        assertMayActFor(actor, params.user_id);
        if (!(await deps.vault.delete(params.user_id, params.provider, actorLabel(actor)))) throw notFound('provider key');
        return { status: 200, body: { object: 'provider_key', user_id: params.user_id, provider: params.provider, deleted: true } };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/api/vault/rewrap',
      operationId: 'rewrapVault',
      tag: TAG,
      summary: 'Move every sealed secret (users’ and operator’s credentials, webhook signing secrets) to the newest master key (admin only)',
      responses: { 200: { description: 'How many were moved, and how many could not be', schema: RewrapResult }, ...common },
      handler: async ({ actor }) => {
        if (actor.kind !== 'admin') throw new HttpError(403, 'forbidden', 'Rewrapping the vault needs an admin token');
        // One rotation covers every sealed table: they are sealed by the same VAULT_MASTER_KEYS,
        // so the old key can be dropped only once none has a row under it.
        const byTable = await vaultCall(async () => ({
          provider_keys: await deps.vault.rewrap(),
          operator_credentials: await deps.operatorCredentials.rewrap(),
          webhook_secrets: await rewrapWebhookSecrets(deps.pool, deps.vault.envelope!, deps.logger),
        }));
        const counts = Object.values(byTable);
        const result = {
          rewrapped: counts.reduce((n, c) => n + c.rewrapped, 0),
          failed: counts.reduce((n, c) => n + c.failed, 0),
          master_key_id: deps.vault.envelope!.currentKeyId,
          by_table: byTable,
        };
        await audit.record({ actor: actorLabel(actor), action: 'vault.rewrapped', keyId: null, userId: null, details: result }, deps.pool);
        return { status: 200, body: result };
      },
    }),
  ];
}
