import type { Logger } from '@tollgate/common';
import { Counter, type Registry } from 'prom-client';
import type { EnvOperatorCredential } from '../config.js';
import { VaultDecryptError, type Envelope } from '../vault/envelope.js';
import type { OperatorCredentialRecord, OperatorCredentialStore } from '../vault/operator-credential-store.js';
import { RefreshingCache, type RefreshingCacheOptions } from './refreshing-cache.js';

/** One provider's operator credentials, sealed, as cached (ordered by id). */
export interface OperatorCredentialSet {
  records: OperatorCredentialRecord[];
}

/** The operator's credentials per provider, cached by the keys' policy and keyed by provider name. */
export function createOperatorCredentialCache(
  store: OperatorCredentialStore,
  settings: Omit<RefreshingCacheOptions<OperatorCredentialSet, string>, 'load' | 'tagsOf' | 'unavailable'>,
): RefreshingCache<OperatorCredentialSet> {
  return new RefreshingCache<OperatorCredentialSet>({
    ...settings,
    load: async (provider) => {
      const records = await store.forProvider(provider);
      return records.length > 0 ? { records } : null;
    },
  });
}

/** The id a PROVIDER_KEY_<NAME> credential is known by in usage rows and logs. */
const envCredentialId = (provider: string) => `env:${provider}`;

export function createOperatorCredentialUsesCounter(registry: Registry): Counter<'provider' | 'credential_id'> {
  return new Counter({
    name: 'tollgate_authz_operator_credential_uses_total',
    help: 'Requests given an operator credential, by provider and credential id (never the secret)',
    labelNames: ['provider', 'credential_id'],
    registers: [registry],
  });
}

export type OperatorPick = { id: string; secret: string } | { unreadable: true } | { rejected: true } | null;

/** Whether the provider rejected a credential since its last update (operator-credential-health.ts). */
export interface RotationFilter {
  isOut(id: string, updatedAt: Date): boolean;
}

/**
 * Picks the operator credential for one request. Several for one provider are used in turn,
 * round robin per replica: it needs no shared state on the Check path (least-recently-used
 * across replicas would cost a Redis write per request), and N replicas each going round keep
 * the spread even in aggregate. A record that does not decrypt is logged (id, never secret)
 * and skipped; only when none opens is the answer "unreadable". One its provider rejected is
 * out of rotation (docs/vault.md, "Rejected operator credentials").
 */
export class OperatorCredentials {
  private readonly turn = new Map<string, number>();
  private readonly fromEnv: Map<string, string>;

  constructor(
    private readonly envelope: Envelope | null,
    private readonly cache: RefreshingCache<OperatorCredentialSet>,
    fromEnv: readonly EnvOperatorCredential[],
    private readonly logger: Logger,
    private readonly served: Counter<'provider' | 'credential_id'>,
    private readonly rotation: RotationFilter = { isOut: () => false },
  ) {
    this.fromEnv = new Map(fromEnv.map((c) => [c.provider, c.secret]));
  }

  async pick(provider: string): Promise<OperatorPick> {
    const envSecret = this.fromEnv.get(provider);
    if (envSecret !== undefined) return this.count(provider, { id: envCredentialId(provider), secret: envSecret });
    if (!this.envelope) return null;
    const set = await this.cache.get(provider);
    if (!set) return null;
    // Out of rotation: rejected by the provider since last rotated. With none left, refused.
    const records = set.records.filter((r) => !this.rotation.isOut(r.id, r.updatedAt));
    if (records.length === 0) return { rejected: true };
    const n = records.length;
    const start = (this.turn.get(provider) ?? 0) % n;
    this.turn.set(provider, (start + 1) % n);
    for (let i = 0; i < n; i++) {
      const record = records[(start + i) % n]!;
      try {
        return this.count(provider, { id: record.id, secret: this.envelope.openOperatorSecret(record.sealed, record.id, provider) });
      } catch (err) {
        if (!(err instanceof VaultDecryptError)) throw err;
        this.logger.error({ provider, operatorCredentialId: record.id, err: err.message }, 'operator credential cannot be decrypted; skipped');
      }
    }
    return { unreadable: true };
  }

  private count(provider: string, pick: { id: string; secret: string }): { id: string; secret: string } {
    this.served.inc({ provider, credential_id: pick.id });
    return pick;
  }
}
