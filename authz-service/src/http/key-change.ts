import { createHash } from 'node:crypto';
import type pg from 'pg';
import { HttpError } from '@tollgate/common';
import type { ServiceDeps } from '../deps.js';
import type { ApiKey } from '../domain/api-key.js';
import { effectiveScopes, permissionSets } from '../domain/scopes.js';
import { AuditStore, type AuditAction } from '../stores/audit-store.js';
import { IdempotencyStore } from '../stores/idempotency-store.js';
import { inTransaction } from '../stores/transaction.js';
import type { WebhookEventType } from '../webhooks/events.js';
import { enqueueWebhook } from '../webhooks/outbox.js';
import { actorLabel, ownsKey, scopeCovered, type Actor } from './auth.js';
import { notFound } from './errors.js';
import { canonicalJson, type IdempotencyRequest, withoutSecret } from './idempotency.js';
import { toKeyRecord } from './key-records.js';
import { OwnerFieldPolicy } from './owner-field-policy.js';
import type { KeyRecord } from './schemas/keys.js';

/** Audit actions that are also outbound webhook events (details hold no secret: see audit-store.ts). */
const ANNOUNCED_KEY_ACTIONS: Partial<Record<AuditAction, WebhookEventType>> = {
  'key.created': 'key.created',
  'key.revoked': 'key.revoked',
  'key.rotated': 'key.rotated',
};

export interface Outcome {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/**
 * What every key change goes through, whatever the operation (key-management.ts): one
 * transaction with its audit row and idempotency record, so a failed call writes nothing; the
 * checks on permission sets, scope escalation, expiry and ownership; and, after the commit, the
 * key's id published so every authz-service replica drops its cached copy.
 */
export abstract class KeyChanges {
  protected readonly audit = new AuditStore();
  protected readonly idempotency = new IdempotencyStore();
  protected readonly ownerPolicy: OwnerFieldPolicy;
  readonly sets: Record<string, readonly string[]>;

  constructor(protected readonly deps: ServiceDeps) {
    this.sets = permissionSets(deps.config.PERMISSION_SETS);
    this.ownerPolicy = new OwnerFieldPolicy({
      sets: this.sets,
      plans: deps.plans,
      rotationGraceSeconds: deps.config.ROTATION_GRACE_SECONDS,
    });
  }

  get defaultPermissionSet(): string {
    return this.deps.config.DEFAULT_PERMISSION_SET;
  }

  record(key: ApiKey): KeyRecord {
    return toKeyRecord(key, this.sets, this.deps.plans);
  }

  /**
   * Runs a change in a transaction; with an Idempotency-Key, a repeat of the same request
   * returns the first answer (without any secret) and changes nothing more.
   */
  protected async change(
    actor: Actor,
    idem: IdempotencyRequest | undefined,
    fn: (db: pg.PoolClient) => Promise<Outcome & { changedKeyId?: string }>,
  ): Promise<Outcome> {
    const outcome = await inTransaction(this.deps.pool, async (db) => {
      if (!idem) return fn(db);
      const scope = actorLabel(actor);
      const hash = createHash('sha256').update(canonicalJson(idem.fingerprint)).digest('hex');
      const claim = await this.idempotency.claim(scope, idem.key, hash, db);
      if (claim.state !== 'claimed' && claim.requestHash !== hash) {
        throw new HttpError(422, 'idempotency_key_reused', 'This Idempotency-Key was already used with a different request');
      }
      if (claim.state === 'in_progress') {
        throw new HttpError(409, 'idempotency_key_in_use', 'A request with this Idempotency-Key is still in progress; retry shortly');
      }
      if (claim.state === 'replay') {
        return { status: claim.status, body: claim.response, headers: { 'idempotent-replayed': 'true' } };
      }
      const result = await fn(db);
      await this.idempotency.complete(scope, idem.key, result.status, withoutSecret(result.body), db);
      return result;
    });
    if (outcome.changedKeyId) await this.published(outcome.changedKeyId);
    const { changedKeyId: _id, ...answer } = outcome as Outcome & { changedKeyId?: string };
    return answer;
  }

  /** Tells every replica to drop the key from its cache. The change is committed either way. */
  protected async published(keyId: string): Promise<void> {
    try {
      await this.deps.keyEvents.keyChanged(keyId);
    } catch (err) {
      // Caches still expire after KEY_CACHE_TTL_MS; say so loudly, since revocation is slower meanwhile.
      this.deps.logger.error({ err: (err as Error).message, keyId }, 'could not publish key change; caches expire by TTL');
    }
  }

  /** A plan is the operator's word for limits bought in Stripe: only a configured one can be named. */
  protected checkPlan(name: string | null | undefined): void {
    if (name && !this.deps.plans.get(name)) {
      const known = this.deps.plans.list().map((p) => p.name);
      const message = `"${name}" is not a configured plan (${known.length ? `known: ${known.join(', ')}` : 'PLANS defines none'})`;
      throw new HttpError(400, 'invalid_request', `body.plan: ${message}`, [{ field: 'body.plan', code: 'unknown_plan', message }]);
    }
  }

  protected checkPermissionSet(name: string | null | undefined): void {
    if (name && !this.sets[name]) {
      throw new HttpError(422, 'unknown_permission_set', `Unknown permission set "${name}"`, { known: Object.keys(this.sets) });
    }
  }

  /**
   * Owners may not give a key scopes they do not hold themselves. Scopes the key already has
   * (`kept`) are not a grant: an operator may have put one there that no owner can grant (a
   * `service_route:` scope), and renaming that key must still work.
   */
  protected checkNoEscalation(actor: Actor, key: { scopes: readonly string[]; permissionSet: string | null }, kept: readonly string[] = []): void {
    if (actor.kind !== 'key') return;
    const wanted = effectiveScopes(key, this.sets);
    const beyond = wanted.filter((s) => !kept.includes(s) && !scopeCovered(actor.scopes, s));
    if (beyond.length > 0) {
      throw new HttpError(403, 'scope_escalation', `A keys:manage key cannot grant scopes it does not hold: ${beyond.join(', ')}`, { scopes: beyond });
    }
  }

  protected futureDate(iso: string, field: string): Date {
    const d = new Date(iso);
    if (d.getTime() <= Date.now()) {
      throw new HttpError(400, 'invalid_request', `body.${field}: must be in the future`, [
        { field: `body.${field}`, code: 'custom', message: 'must be in the future' },
      ]);
    }
    return d;
  }

  /** The owner key making a new key: its own limits, expiry and billing bound the new one. */
  protected async creatorKey(keyId: string, db: pg.PoolClient): Promise<ApiKey> {
    const key = await this.deps.keyStore.getById(keyId, db);
    // Deleted since it authenticated this call: as if it had not been valid.
    if (!key) throw new HttpError(401, 'invalid_api_key', 'The API key is not valid (unknown key)');
    return key;
  }

  /** The key, locked for this transaction, if the actor may see it; otherwise 404 (see auth.ts). */
  protected async lockOwned(actor: Actor, id: string, db: pg.PoolClient): Promise<ApiKey> {
    const key = await this.deps.keyStore.getForUpdate(id, db);
    if (!key || !ownsKey(actor, key.userId)) throw notFound();
    return key;
  }

  protected static assertNotRevoked(key: ApiKey): void {
    if (key.revokedAt) throw new HttpError(409, 'key_revoked', 'The key is revoked; revocation is permanent (create a new key)');
  }

  protected async audited(actor: Actor, action: AuditAction, key: ApiKey, details: Record<string, unknown>, db: pg.PoolClient): Promise<void> {
    await this.audit.record({ actor: actorLabel(actor), action, keyId: key.id, userId: key.userId, details }, db);
    // The changes operators are told about by webhook, queued in the change's own transaction.
    const announced = ANNOUNCED_KEY_ACTIONS[action];
    if (announced) {
      await enqueueWebhook(db, announced, { key_id: key.id, user_id: key.userId, name: key.name, actor: actorLabel(actor), ...details });
    }
  }
}
