import { randomBytes } from 'node:crypto';
import { HttpError } from '@tollgate/common';
import type pg from 'pg';
import { AuditStore } from '../stores/audit-store.js';
import { inTransaction } from '../stores/transaction.js';
import type { Envelope } from '../vault/envelope.js';
import { VaultDisabledError } from '../vault/vault-service.js';
import { type EndpointChanges, type WebhookEndpoint, WebhookEndpointStore } from './endpoint-store.js';
import type { WebhookEventType } from './events.js';
import { newSigningSecret } from './signer.js';
import { checkWebhookUrl, WebhookTargetRefused } from './target-guard.js';

const audit = new AuditStore();

export const WEBHOOK_ENDPOINT_ID_RE = /^whe_[0-9a-f]{24}$/;

/** What the operator sees once, at creation and at each rotation. */
export interface EndpointWithSecret {
  endpoint: WebhookEndpoint;
  secret: string;
}

/**
 * Operators' webhook endpoints: validation of where they point, signing secrets sealed by the
 * vault's envelope (bound to the endpoint's id), and an audit row for every change.
 */
export class WebhookEndpointService {
  readonly store: WebhookEndpointStore;

  constructor(
    private readonly pool: pg.Pool,
    private readonly envelope: Envelope | null,
    private readonly allowPrivate: boolean,
  ) {
    this.store = new WebhookEndpointStore(pool);
  }

  private need(): Envelope {
    // The secret must be readable again to sign each delivery, so it is sealed, not hashed.
    if (!this.envelope) throw new VaultDisabledError('Webhook signing secrets are sealed by the vault: set VAULT_MASTER_KEYS to register endpoints');
    return this.envelope;
  }

  private checkedUrl(url: string): string {
    try {
      return checkWebhookUrl(url, this.allowPrivate).toString();
    } catch (err) {
      if (err instanceof WebhookTargetRefused) throw new HttpError(400, 'webhook_target_refused', err.message);
      throw err;
    }
  }

  async create(input: { url: string; events: WebhookEventType[]; description: string | null; enabled: boolean }, actor: string): Promise<EndpointWithSecret> {
    const envelope = this.need();
    const url = this.checkedUrl(input.url);
    const id = `whe_${randomBytes(12).toString('hex')}`;
    const secret = newSigningSecret();
    const endpoint = await inTransaction(this.pool, async (db) => {
      const e = await this.store.insert(
        { id, url, description: input.description, events: input.events, enabled: input.enabled, secret: envelope.sealWebhookSecret(secret, id) },
        db,
      );
      await audit.record({ actor, action: 'webhook_endpoint.created', keyId: null, userId: null, details: { endpoint_id: id, url, events: input.events } }, db);
      return e;
    });
    return { endpoint, secret };
  }

  async update(id: string, changes: EndpointChanges, actor: string): Promise<WebhookEndpoint | null> {
    const url = changes.url === undefined ? undefined : this.checkedUrl(changes.url);
    return inTransaction(this.pool, async (db) => {
      const e = await this.store.update(id, { ...changes, ...(url ? { url } : {}) }, db);
      if (e) {
        await audit.record(
          { actor, action: 'webhook_endpoint.updated', keyId: null, userId: null, details: { endpoint_id: id, fields: Object.keys(changes), ...changes } },
          db,
        );
      }
      return e;
    });
  }

  /** A new secret; the old one keeps signing for `graceSeconds` so receivers can switch without a gap. */
  async rotateSecret(id: string, graceSeconds: number, actor: string): Promise<EndpointWithSecret | null> {
    const envelope = this.need();
    const secret = newSigningSecret();
    const until = graceSeconds > 0 ? new Date(Date.now() + graceSeconds * 1000) : null;
    const endpoint = await inTransaction(this.pool, async (db) => {
      const e = await this.store.rotateSecret(id, envelope.sealWebhookSecret(secret, id), until, db);
      if (e) {
        await audit.record(
          {
            actor,
            action: 'webhook_endpoint.secret_rotated',
            keyId: null,
            userId: null,
            details: { endpoint_id: id, previous_secret_expires_at: until?.toISOString() ?? null },
          },
          db,
        );
      }
      return e;
    });
    return endpoint ? { endpoint, secret } : null;
  }

  async delete(id: string, actor: string): Promise<WebhookEndpoint | null> {
    return inTransaction(this.pool, async (db) => {
      const e = await this.store.delete(id, db);
      if (e) await audit.record({ actor, action: 'webhook_endpoint.deleted', keyId: null, userId: null, details: { endpoint_id: id, url: e.url } }, db);
      return e;
    });
  }
}
