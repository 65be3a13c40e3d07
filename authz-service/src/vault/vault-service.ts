import type { Logger } from '@tollgate/common';
import type { KeyEventPublisher } from '../stores/key-events.js';
import { Envelope, fingerprint, type MasterKey } from './envelope.js';
import { metaOf, type ProviderKeyMeta, type VaultStore } from './vault-store.js';

export class VaultDisabledError extends Error {
  constructor() {
    super('the provider-key vault is off: set VAULT_MASTER_KEYS');
    this.name = 'VaultDisabledError';
  }
}

/** Write-only vault operations: secrets go in, only metadata comes out. */
export class VaultService {
  readonly envelope: Envelope | null;

  constructor(
    masterKeys: MasterKey[] | undefined,
    private readonly store: VaultStore,
    private readonly events: KeyEventPublisher,
    private readonly logger: Logger,
  ) {
    this.envelope = masterKeys?.length ? new Envelope(masterKeys) : null;
  }

  private need(): Envelope {
    if (!this.envelope) throw new VaultDisabledError();
    return this.envelope;
  }

  async set(userId: string, provider: string, secret: string): Promise<{ meta: ProviderKeyMeta; created: boolean }> {
    const envelope = this.need();
    const { record, created } = await this.store.upsert(userId, provider, envelope.sealSecret(secret, userId, provider), fingerprint(secret));
    await this.events.providerKeyChanged(userId, provider);
    return { meta: metaOf(record), created };
  }

  async list(userId: string): Promise<ProviderKeyMeta[]> {
    return (await this.store.list(userId)).map(metaOf);
  }

  async delete(userId: string, provider: string): Promise<boolean> {
    const deleted = await this.store.delete(userId, provider);
    if (deleted) await this.events.providerKeyChanged(userId, provider);
    return deleted;
  }

  /** Moves every record to the newest master key; returns how many were rewrapped. */
  async rewrap(batchSize = 200): Promise<{ rewrapped: number; failed: number }> {
    const envelope = this.need();
    let rewrapped = 0;
    let failed = 0;
    const skip = new Set<string>();
    for (;;) {
      const rows = (await this.store.notUnder(envelope.currentKeyId, batchSize + skip.size)).filter(
        (r) => !skip.has(`${r.userId}\n${r.provider}`),
      );
      if (rows.length === 0) break;
      for (const r of rows) {
        try {
          const next = envelope.rewrap(r.sealed, r.userId, r.provider);
          if (await this.store.replaceSeal(r.userId, r.provider, r.sealed, next)) rewrapped++;
        } catch (err) {
          failed++;
          skip.add(`${r.userId}\n${r.provider}`);
          this.logger.error({ userId: r.userId, provider: r.provider, err: (err as Error).message }, 'could not rewrap provider credential');
        }
      }
    }
    return { rewrapped, failed };
  }
}
