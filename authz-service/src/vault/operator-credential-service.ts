import { randomBytes } from 'node:crypto';
import type { Logger } from '@tollgate/common';
import { AuditStore } from '../stores/audit-store.js';
import type { KeyEventPublisher } from '../stores/key-events.js';
import { afterCommit, inTransaction } from '../stores/transaction.js';
import { fingerprint, type Envelope } from './envelope.js';
import type { OperatorCredentialMeta, OperatorCredentialStore } from './operator-credential-store.js';
import { rewrapTable, type RewrapCounts } from './rewrap.js';
import { withoutSealed } from './vault-store.js';
import { VaultDisabledError } from './vault-service.js';

/**
 * The operator's provider credentials (the managed phase, docs/vault.md): write-only like the
 * users', sealed by the same envelope under their own binding (id and provider), each change
 * committed with its audit row and announced to every replica's cache after the commit.
 */
export class OperatorCredentialService {
  private readonly audit = new AuditStore();

  constructor(
    private readonly envelope: Envelope | null,
    private readonly store: OperatorCredentialStore,
    private readonly events: KeyEventPublisher,
    private readonly logger: Logger,
  ) {}

  private need(): Envelope {
    if (!this.envelope) throw new VaultDisabledError();
    return this.envelope;
  }

  async create(provider: string, label: string, secret: string, actor: string): Promise<OperatorCredentialMeta> {
    const envelope = this.need();
    const id = `opc_${randomBytes(12).toString('hex')}`;
    const record = await inTransaction(this.store.pool, async (db) => {
      const r = await this.store.insert(id, provider, label, envelope.sealOperatorSecret(secret, id, provider), fingerprint(secret), db);
      await this.audit.record(
        { actor, action: 'operator_credential.created', keyId: null, userId: null, details: { id, provider, label, fingerprint: r.fingerprint } },
        db,
      );
      return r;
    });
    await this.announce(provider);
    return withoutSealed(record);
  }

  /** A new secret for an existing credential (rotation); null if there is no such id. */
  async rotate(id: string, secret: string, label: string | undefined, actor: string): Promise<OperatorCredentialMeta | null> {
    const envelope = this.need();
    const record = await inTransaction(this.store.pool, async (db) => {
      const current = await this.store.get(id, db);
      if (!current) return null;
      const r = await this.store.replace(id, envelope.sealOperatorSecret(secret, id, current.provider), fingerprint(secret), label, db);
      if (!r) return null;
      await this.audit.record(
        { actor, action: 'operator_credential.rotated', keyId: null, userId: null, details: { id, provider: r.provider, fingerprint: r.fingerprint } },
        db,
      );
      return r;
    });
    if (record) await this.announce(record.provider);
    return record ? withoutSealed(record) : null;
  }

  async list(): Promise<OperatorCredentialMeta[]> {
    return (await this.store.list()).map(withoutSealed);
  }

  async delete(id: string, actor: string): Promise<OperatorCredentialMeta | null> {
    const record = await inTransaction(this.store.pool, async (db) => {
      const r = await this.store.delete(id, db);
      if (r) await this.audit.record({ actor, action: 'operator_credential.deleted', keyId: null, userId: null, details: { id, provider: r.provider } }, db);
      return r;
    });
    if (record) await this.announce(record.provider);
    return record ? withoutSealed(record) : null;
  }

  /**
   * Moves every operator credential to the newest master key (part of POST /api/vault/rewrap).
   * Each provider whose set moved is announced, so a replica that already holds only the new
   * key drops its cached copies sealed under the old one instead of waiting for them to expire.
   */
  async rewrap(batchSize = 200): Promise<RewrapCounts> {
    const moved = new Set<string>();
    const counts = await rewrapTable(
      this.need(),
      {
        what: 'operator credential',
        notUnder: (masterKeyId, limit) => this.store.notUnder(masterKeyId, limit),
        rewrap: (envelope, r) => envelope.rewrapOperator(r.sealed, r.id, r.provider),
        replaceSeal: async (r, next) => {
          const replaced = await this.store.replaceSeal(r.id, r.sealed, next);
          if (replaced) moved.add(r.provider);
          return replaced;
        },
        identify: (r) => ({ operatorCredentialId: r.id, provider: r.provider }),
      },
      this.logger,
      batchSize,
    );
    for (const provider of moved) await this.announce(provider);
    return counts;
  }

  private announce(provider: string): Promise<void> {
    return afterCommit(this.logger, { provider }, () => this.events.operatorCredentialChanged(provider));
  }
}
