import type { Logger } from '@tollgate/common';
import { AuditStore } from '../stores/audit-store.js';
import type { KeyEventPublisher } from '../stores/key-events.js';
import { afterCommit, inTransaction } from '../stores/transaction.js';
import { Envelope, fingerprint, type MasterKey } from './envelope.js';
import { rewrapTable, type RewrapCounts } from './rewrap.js';
import { type ProviderKeyMeta, type VaultStore, withoutSealed } from './vault-store.js';

export class VaultDisabledError extends Error {
  constructor(message = 'the provider-key vault is off: set VAULT_MASTER_KEYS') {
    super(message);
    this.name = 'VaultDisabledError';
  }
}

/**
 * Write-only vault operations: secrets go in, only metadata comes out. Each change commits with
 * its audit row (actor: `admin`, `key:<id>`, or `system` for in-process callers); the cache
 * invalidation is published after the commit and its failure is logged, never answered.
 */
export class VaultService {
  readonly envelope: Envelope | null;
  private readonly audit = new AuditStore();

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

  async set(userId: string, provider: string, secret: string, actor = 'system'): Promise<{ meta: ProviderKeyMeta; created: boolean }> {
    const envelope = this.need();
    const sealed = envelope.sealSecret(secret, userId, provider);
    const { record, created } = await inTransaction(this.store.pool, async (db) => {
      const stored = await this.store.upsert(userId, provider, sealed, fingerprint(secret), db);
      await this.audit.record({ actor, action: 'provider_key.set', keyId: null, userId, details: { provider, fingerprint: stored.record.fingerprint } }, db);
      return stored;
    });
    await this.announce(userId, provider);
    return { meta: withoutSealed(record), created };
  }

  async list(userId: string): Promise<ProviderKeyMeta[]> {
    return (await this.store.list(userId)).map(withoutSealed);
  }

  async delete(userId: string, provider: string, actor = 'system'): Promise<boolean> {
    const deleted = await inTransaction(this.store.pool, async (db) => {
      if (!(await this.store.delete(userId, provider, db))) return false;
      await this.audit.record({ actor, action: 'provider_key.deleted', keyId: null, userId, details: { provider } }, db);
      return true;
    });
    if (deleted) await this.announce(userId, provider);
    return deleted;
  }

  private announce(userId: string, provider: string): Promise<void> {
    return afterCommit(this.logger, { userId, provider }, () => this.events.providerKeyChanged(userId, provider));
  }

  /** Moves every user credential to the newest master key (operator credentials: OperatorCredentialService.rewrap). */
  async rewrap(batchSize = 200): Promise<RewrapCounts> {
    return rewrapTable(
      this.need(),
      {
        what: 'provider credential',
        notUnder: (masterKeyId, limit) => this.store.notUnder(masterKeyId, limit),
        rewrap: (envelope, r) => envelope.rewrap(r.sealed, r.userId, r.provider),
        replaceSeal: (r, next) => this.store.replaceSeal(r.userId, r.provider, r.sealed, next),
        identify: (r) => ({ userId: r.userId, provider: r.provider }),
      },
      this.logger,
      batchSize,
    );
  }
}
