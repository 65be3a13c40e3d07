import { CHECK_METADATA, type CheckMetadata, type CredentialSource, type Logger } from '@tollgate/common';
import type { ApiKey } from '../domain/api-key.js';
import { pathWithin } from '../domain/path-prefix.js';
import { normaliseProvider, VaultDecryptError, type Envelope } from '../vault/envelope.js';
import type { ProviderKeyRecord, VaultStore } from '../vault/vault-store.js';
import { deny, type CheckInput, type Deny } from './decision.js';
import { managedProvidersOf } from './managed-providers.js';
import type { OperatorCredentials } from './operator-credentials.js';
import { RefreshingCache, StoreUnavailableError, type RefreshingCacheOptions } from './refreshing-cache.js';

interface ProviderRoute {
  prefix: string;
  default_provider?: string;
  required: boolean;
}

export interface ProviderSettings {
  routes: ProviderRoute[];
  defaultProvider?: string;
  byok: 'allow' | 'deny';
}

export const vaultCacheKey = (userId: string, provider: string) => `${userId}\n${provider}`;

/** The vault's sealed records, cached under vaultCacheKey by the keys' policy (refreshing-cache.ts). */
export function createVaultCache(
  store: VaultStore,
  settings: Omit<RefreshingCacheOptions<ProviderKeyRecord, string>, 'load' | 'tagsOf' | 'unavailable'>,
): RefreshingCache<ProviderKeyRecord> {
  return new RefreshingCache<ProviderKeyRecord>({
    ...settings,
    load: (k) => {
      const [userId, provider] = k.split('\n') as [string, string];
      return store.get(userId, provider);
    },
  });
}

/**
 * Seeds 000 and 002 at the gateway. On a provider route the upstream gets the caller's
 * provider credential: the client's own `X-Provider-Auth` when bring-your-own-key is allowed
 * (passed through untouched, never stored), else the one in the caller's vault (decrypted per
 * request from ciphertext cached in memory), else — for a key granted the provider in
 * managed_providers — one of the operator's (operator-credentials.ts). Missing all: a 400 naming
 * the provider. The decision's metadata says which source served it, for cost allocation.
 */
export class ProviderInjector {
  constructor(
    private readonly settings: ProviderSettings,
    private readonly envelope: Envelope | null,
    private readonly vault: RefreshingCache<ProviderKeyRecord>,
    private readonly logger: Logger,
    private readonly operator?: OperatorCredentials,
  ) {}

  async resolve(key: ApiKey, input: CheckInput, path: string): Promise<{ headers: Record<string, string>; metadata?: CheckMetadata } | Deny> {
    const route = this.settings.routes.find((r) => pathWithin(path, r.prefix, 'restrict'));
    if (!route) return { headers: {} };
    const raw = input.headers['x-provider'];
    let provider: string | undefined;
    if (raw !== undefined && raw.trim() !== '') {
      const p = normaliseProvider(raw);
      if (!p) return deny(400, 'invalid_provider', 'X-Provider must be a provider name: letters, digits, _ or -, up to 32 characters');
      provider = p;
    } else {
      provider = route.default_provider ?? this.settings.defaultProvider;
    }
    if (!provider) {
      return route.required ? deny(400, 'provider_required', 'This route needs a provider: send X-Provider') : { headers: {} };
    }

    const clientAuth = input.headers['x-provider-auth'];
    if (clientAuth !== undefined && clientAuth.trim() !== '') {
      const perKey = key.metadata['byok'];
      const allowed = typeof perKey === 'boolean' ? perKey : this.settings.byok === 'allow';
      if (!allowed) return deny(403, 'byok_not_allowed', `This API key may not bring its own ${provider} credential; store it in the vault instead`);
      return { headers: { 'x-provider': provider }, metadata: sourceOf(provider, 'byok') };
    }

    const missing = () => (this.operator && managedProvidersOf(key).includes(provider) ? this.fromOperator(provider, route.required) : notFound());
    const notFound = () =>
      route.required
        ? deny(
            400,
            'provider_credential_missing',
            `No credential for provider "${provider}": store one for this user (PUT /api/users/<user_id>/provider-keys/${provider}) or send X-Provider-Auth`,
          )
        : { headers: { 'x-provider': provider } };
    if (!this.envelope) return missing();
    let record: ProviderKeyRecord | null;
    try {
      record = await this.vault.get(vaultCacheKey(key.userId, provider));
    } catch (err) {
      if (err instanceof StoreUnavailableError) return vaultUnavailable();
      throw err;
    }
    if (!record) return missing();
    try {
      const secret = this.envelope.openSecret(record.sealed, key.userId, provider);
      return { headers: { 'x-provider': provider, 'x-provider-auth': `Bearer ${secret}` }, metadata: sourceOf(provider, 'user') };
    } catch (err) {
      if (!(err instanceof VaultDecryptError)) throw err;
      this.logger.error({ userId: key.userId, provider, err: err.message }, 'stored provider credential cannot be decrypted');
      return deny(503, 'provider_credential_unreadable', `The stored ${provider} credential cannot be used; ask an operator to check the vault`, {
        outcome: 'vault_decrypt_failed',
      });
    }
  }

  private async fromOperator(provider: string, required: boolean): Promise<{ headers: Record<string, string>; metadata?: CheckMetadata } | Deny> {
    let pick;
    try {
      pick = await this.operator!.pick(provider);
    } catch (err) {
      if (err instanceof StoreUnavailableError) return vaultUnavailable();
      throw err;
    }
    if (pick && 'unreadable' in pick) {
      return deny(503, 'provider_credential_unreadable', `The operator's ${provider} credentials cannot be used; ask an operator to check the vault`, {
        outcome: 'vault_decrypt_failed',
      });
    }
    if (pick && 'rejected' in pick) {
      // A route that works without a credential still does; one that needs it is refused here.
      if (!required) return { headers: { 'x-provider': provider } };
      return deny(
        503,
        'provider_credential_unreadable',
        `The provider rejected every one of the operator's ${provider} credentials; ask an operator to rotate them`,
        {
          outcome: 'operator_credentials_rejected',
        },
      );
    }
    if (!pick) {
      if (!required) return { headers: { 'x-provider': provider } };
      return deny(400, 'provider_credential_missing', `No credential for provider "${provider}": the operator has none stored, and this user has none either`);
    }
    return {
      headers: { 'x-provider': provider, 'x-provider-auth': `Bearer ${pick.secret}` },
      metadata: { ...sourceOf(provider, 'operator'), [CHECK_METADATA.operatorCredentialId]: pick.id },
    };
  }
}

function sourceOf(provider: string, source: CredentialSource): CheckMetadata {
  return { [CHECK_METADATA.provider]: provider, [CHECK_METADATA.credentialSource]: source };
}

function vaultUnavailable(): Deny {
  return deny(503, 'unavailable', 'The provider-key vault is unavailable; try again shortly', {
    headers: { 'retry-after': '1' },
    outcome: 'vault_unavailable',
  });
}
