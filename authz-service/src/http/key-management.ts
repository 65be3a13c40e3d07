import { createHash } from 'node:crypto';
import type pg from 'pg';
import { HttpError } from '@tollgate/common';
import type { ServiceDeps } from '../deps.js';
import type { ApiKey } from '../domain/api-key.js';
import { generateKey } from '../domain/key-format.js';
import { effectiveScopes, permissionSets } from '../domain/scopes.js';
import type { KeyListFilter, KeyPatch } from '../stores/key-store.js';
import { AuditStore, type AuditAction } from '../stores/audit-store.js';
import { IdempotencyStore } from '../stores/idempotency-store.js';
import { inTransaction } from '../stores/transaction.js';
import { actorLabel, assertMayActFor, ownsKey, scopeCovered, type Actor } from './auth.js';
import { notFound } from './errors.js';
import { decodeCursor, encodeCursor, toKeyRecord } from './key-records.js';
import { OwnerFieldPolicy } from './owner-field-policy.js';
import type { CreateKeyBody, KeyRecord, UpdateKeyBody } from './schemas.js';

const DAY_MS = 86_400_000;

export interface Outcome {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** A POST's Idempotency-Key with what identifies the request it was first used for. */
export interface IdempotencyRequest {
  key: string;
  /** Method, route and body: the same key with anything else is refused. */
  fingerprint: unknown;
}

/** JSON with object keys sorted, so equal bodies hash equally whatever their key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Response bodies are remembered for replay without the plaintext key: secrets are never stored. */
function withoutSecret(body: unknown): unknown {
  if (!body || typeof body !== 'object') return body;
  const { key: _secret, ...rest } = body as Record<string, unknown>;
  return rest;
}

/**
 * The key lifecycle behind the management API. Each change runs in one transaction with its
 * audit row (and its idempotency record), so a failed call writes nothing; after the commit the
 * key's id is published so every authz-service replica drops its cached copy.
 */
export class KeyManagement {
  private readonly audit = new AuditStore();
  private readonly idempotency = new IdempotencyStore();
  private readonly ownerPolicy: OwnerFieldPolicy;
  readonly sets: Record<string, readonly string[]>;

  constructor(private readonly deps: ServiceDeps) {
    this.sets = permissionSets(deps.config.PERMISSION_SETS);
    if (!this.sets[deps.config.DEFAULT_PERMISSION_SET]) {
      throw new Error(`DEFAULT_PERMISSION_SET "${deps.config.DEFAULT_PERMISSION_SET}" is not a permission set (known: ${Object.keys(this.sets).join(', ')})`);
    }
    this.ownerPolicy = new OwnerFieldPolicy({
      sets: this.sets,
      defaultPerMinute: deps.config.DEFAULT_RATE_LIMIT_PER_MINUTE ?? null,
      defaultPerDay: deps.config.DEFAULT_RATE_LIMIT_PER_DAY ?? null,
      rotationGraceSeconds: deps.config.ROTATION_GRACE_SECONDS,
    });
  }

  get defaultPermissionSet(): string {
    return this.deps.config.DEFAULT_PERMISSION_SET;
  }

  record(key: ApiKey): KeyRecord {
    return toKeyRecord(key, this.sets);
  }

  /**
   * Runs a change in a transaction; with an Idempotency-Key, a repeat of the same request
   * returns the first answer (without any secret) and changes nothing more.
   */
  private async change(
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
  private async published(keyId: string): Promise<void> {
    try {
      await this.deps.keyEvents.keyChanged(keyId);
    } catch (err) {
      // Caches still expire after KEY_CACHE_TTL_MS; say so loudly, since revocation is slower meanwhile.
      this.deps.logger.error({ err: (err as Error).message, keyId }, 'could not publish key change; caches expire by TTL');
    }
  }

  private checkPermissionSet(name: string | null | undefined): void {
    if (name && !this.sets[name]) {
      throw new HttpError(422, 'unknown_permission_set', `Unknown permission set "${name}"`, { known: Object.keys(this.sets) });
    }
  }

  /**
   * Owners may not give a key scopes they do not hold themselves. Scopes the key already has
   * (`kept`) are not a grant: an operator may have put one there that no owner can grant (a
   * `service_route:` scope), and renaming that key must still work.
   */
  private checkNoEscalation(actor: Actor, key: { scopes: readonly string[]; permissionSet: string | null }, kept: readonly string[] = []): void {
    if (actor.kind !== 'key') return;
    const wanted = effectiveScopes(key, this.sets);
    const beyond = wanted.filter((s) => !kept.includes(s) && !scopeCovered(actor.scopes, s));
    if (beyond.length > 0) {
      throw new HttpError(403, 'scope_escalation', `A keys:manage key cannot grant scopes it does not hold: ${beyond.join(', ')}`, { scopes: beyond });
    }
  }

  private futureDate(iso: string, field: string): Date {
    const d = new Date(iso);
    if (d.getTime() <= Date.now()) throw new HttpError(422, 'invalid_expiry', `${field} must be in the future`);
    return d;
  }

  /** The owner key making a new key: its own limits, expiry and billing bound the new one. */
  private async creatorKey(keyId: string, db: pg.PoolClient): Promise<ApiKey> {
    const key = await this.deps.keyStore.getById(keyId, db);
    // Deleted since it authenticated this call: as if it had not been valid.
    if (!key) throw new HttpError(401, 'invalid_api_key', 'The API key is not valid (unknown key)');
    return key;
  }

  /** The key, locked for this transaction, if the actor may see it; otherwise 404 (see auth.ts). */
  private async lockOwned(actor: Actor, id: string, db: pg.PoolClient): Promise<ApiKey> {
    const key = await this.deps.keyStore.getForUpdate(id, db);
    if (!key || !ownsKey(actor, key.userId)) throw notFound();
    return key;
  }

  private static assertNotRevoked(key: ApiKey): void {
    if (key.revokedAt) throw new HttpError(409, 'key_revoked', 'The key is revoked; revocation is permanent (create a new key)');
  }

  private async audited(actor: Actor, action: AuditAction, key: ApiKey, details: Record<string, unknown>, db: pg.PoolClient): Promise<void> {
    await this.audit.record({ actor: actorLabel(actor), action, keyId: key.id, userId: key.userId, details }, db);
  }

  async create(actor: Actor, body: CreateKeyBody, idem?: IdempotencyRequest): Promise<Outcome> {
    assertMayActFor(actor, body.user_id);
    if (body.expires_at != null && body.expires_in_days !== undefined) {
      throw new HttpError(422, 'invalid_expiry', 'Give expires_at or expires_in_days, not both');
    }
    this.checkPermissionSet(body.permission_set);
    const permissionSet = body.permission_set !== undefined ? body.permission_set : body.scopes === undefined ? this.deps.config.DEFAULT_PERMISSION_SET : null;
    const scopes = body.scopes ?? [];
    this.checkNoEscalation(actor, { scopes, permissionSet });
    const requestedExpiry =
      body.expires_at != null
        ? this.futureDate(body.expires_at, 'expires_at')
        : body.expires_in_days !== undefined
          ? new Date(Date.now() + body.expires_in_days * DAY_MS)
          : body.expires_at === null
            ? null
            : undefined;

    return this.change(actor, idem, async (db) => {
      const bounded =
        actor.kind === 'key'
          ? this.ownerPolicy.create(await this.creatorKey(actor.keyId, db), body, requestedExpiry)
          : {
              rateLimitPerMinute: body.rate_limit_per_minute ?? null,
              rateLimitPerDay: body.rate_limit_per_day ?? null,
              monthlyQuota: body.monthly_quota ?? null,
              expiresAt: requestedExpiry ?? null,
              stripeCustomerId: body.stripe_customer_id ?? null,
              metadata: body.metadata ?? {},
            };
      const generated = generateKey(this.deps.config.KEY_PREFIX);
      const key = await this.deps.keyStore.insert(
        {
          userId: body.user_id,
          name: body.name,
          description: body.description ?? null,
          keyPrefix: generated.displayPrefix,
          keyHash: this.deps.hasher.primary(generated.plaintext),
          scopes,
          permissionSet,
          ...bounded,
          createdBy: actorLabel(actor),
        },
        db,
      );
      await this.audited(
        actor,
        'key.created',
        key,
        {
          name: key.name,
          scopes: key.scopes,
          permission_set: key.permissionSet,
          rate_limit_per_minute: key.rateLimitPerMinute,
          rate_limit_per_day: key.rateLimitPerDay,
          expires_at: key.expiresAt?.toISOString() ?? null,
        },
        db,
      );
      // A new key is not in any cache, so there is nothing to publish.
      return { status: 201, body: { ...this.record(key), key: generated.plaintext } };
    });
  }

  async get(actor: Actor, id: string): Promise<KeyRecord> {
    const key = await this.deps.keyStore.getById(id);
    if (!key || !ownsKey(actor, key.userId)) throw notFound();
    return this.record(key);
  }

  async list(actor: Actor, filter: KeyListFilter, page: { limit: number; cursor?: string }): Promise<unknown> {
    if (filter.userId !== undefined) assertMayActFor(actor, filter.userId);
    const scoped = actor.kind === 'key' ? { ...filter, userId: actor.userId } : filter;
    const result = await this.deps.keyStore.list(scoped, { limit: page.limit, after: page.cursor ? decodeCursor(page.cursor) : null });
    return {
      object: 'list',
      data: result.keys.map((k) => this.record(k)),
      has_more: result.next !== null,
      next_cursor: result.next ? encodeCursor(result.next) : null,
    };
  }

  async update(actor: Actor, id: string, body: UpdateKeyBody): Promise<Outcome> {
    this.checkPermissionSet(body.permission_set);
    return this.change(actor, undefined, async (db) => {
      const current = await this.lockOwned(actor, id, db);
      KeyManagement.assertNotRevoked(current);
      if (actor.kind === 'key') {
        const lifting = body.is_active === true && !current.isActive;
        this.ownerPolicy.update(current, body, { suspendedBy: lifting ? await this.audit.lastSuspendedBy(id, db) : null });
      }
      const patch: KeyPatch = {
        name: body.name,
        description: body.description,
        scopes: body.scopes,
        permissionSet: body.permission_set,
        rateLimitPerMinute: body.rate_limit_per_minute,
        rateLimitPerDay: body.rate_limit_per_day,
        monthlyQuota: body.monthly_quota,
        metadata: body.metadata,
        stripeCustomerId: body.stripe_customer_id,
        isActive: body.is_active,
      };
      this.checkNoEscalation(
        actor,
        {
          scopes: patch.scopes ?? current.scopes,
          permissionSet: patch.permissionSet !== undefined ? patch.permissionSet : current.permissionSet,
        },
        effectiveScopes(current, this.sets),
      );
      const key = (await this.deps.keyStore.update(id, patch, db))!;
      // Field names always; values except metadata (free-form, may be sensitive to its owner).
      const { metadata: _m, ...values } = body;
      await this.audited(actor, 'key.updated', key, { fields: Object.keys(body), ...values }, db);
      return { status: 200, body: this.record(key), changedKeyId: key.id };
    });
  }

  async revoke(actor: Actor, id: string, reason: string | undefined, idem?: IdempotencyRequest): Promise<Outcome> {
    return this.change(actor, idem, async (db) => {
      const current = await this.lockOwned(actor, id, db);
      // Revoking twice is not an error (scripts retry); the first revocation stands.
      if (current.revokedAt) return { status: 200, body: this.record(current) };
      const key = (await this.deps.keyStore.revoke(id, actorLabel(actor), reason ?? null, db))!;
      await this.audited(actor, 'key.revoked', key, { reason: reason ?? null }, db);
      return { status: 200, body: this.record(key), changedKeyId: key.id };
    });
  }

  async extend(actor: Actor, id: string, body: { expires_at?: string | null; days?: number }, idem?: IdempotencyRequest): Promise<Outcome> {
    const explicit = body.expires_at ? this.futureDate(body.expires_at, 'expires_at') : null;
    return this.change(actor, idem, async (db) => {
      const current = await this.lockOwned(actor, id, db);
      KeyManagement.assertNotRevoked(current);
      let expiresAt = explicit;
      if (body.days !== undefined) {
        const from = Math.max(Date.now(), current.expiresAt?.getTime() ?? 0);
        expiresAt = new Date(from + body.days * DAY_MS);
      }
      if (actor.kind === 'key') this.ownerPolicy.extend(current, expiresAt, body.days !== undefined ? 'days' : 'expires_at');
      const key = (await this.deps.keyStore.setExpiry(id, expiresAt, db))!;
      await this.audited(actor, 'key.extended', key, { from: current.expiresAt?.toISOString() ?? null, to: expiresAt?.toISOString() ?? null }, db);
      return { status: 200, body: this.record(key), changedKeyId: key.id };
    });
  }

  async rotate(actor: Actor, id: string, graceSeconds: number | undefined, idem?: IdempotencyRequest): Promise<Outcome> {
    const grace = graceSeconds ?? this.deps.config.ROTATION_GRACE_SECONDS;
    if (actor.kind === 'key') this.ownerPolicy.rotate(grace);
    return this.change(actor, idem, async (db) => {
      const current = await this.lockOwned(actor, id, db);
      KeyManagement.assertNotRevoked(current);
      const generated = generateKey(this.deps.config.KEY_PREFIX);
      const graceEnd = grace > 0 ? new Date(Date.now() + grace * 1000) : null;
      const key = (await this.deps.keyStore.rotate(
        id,
        { keyHash: this.deps.hasher.primary(generated.plaintext), keyPrefix: generated.displayPrefix, graceEnd },
        db,
      ))!;
      await this.audited(actor, 'key.rotated', key, { grace_seconds: grace, previous_key_expires_at: graceEnd?.toISOString() ?? null }, db);
      return { status: 200, body: { ...this.record(key), key: generated.plaintext }, changedKeyId: key.id };
    });
  }

  async remove(actor: Actor, id: string): Promise<Outcome> {
    return this.change(actor, undefined, async (db) => {
      const current = await this.lockOwned(actor, id, db);
      await this.deps.keyStore.delete(id, db);
      await this.audited(actor, 'key.deleted', current, { name: current.name }, db);
      return { status: 200, body: { id, object: 'key', deleted: true }, changedKeyId: id };
    });
  }
}
