import { generateKey } from '../domain/key-format.js';
import { effectiveScopes } from '../domain/scopes.js';
import type { KeyListFilter, KeyPatch } from '../stores/key-store.js';
import { actorLabel, assertMayActFor, ownsKey, type Actor } from './auth.js';
import { notFound } from './errors.js';
import type { IdempotencyRequest } from './idempotency.js';
import { KeyChanges, type Outcome } from './key-change.js';
import { decodeCursor, encodeCursor } from './key-records.js';
import type { CreateKeyBody, KeyRecord, UpdateKeyBody } from './schemas/keys.js';

const DAY_MS = 86_400_000;

/**
 * The key lifecycle behind the management API: create, read, list, change, revoke, extend, rotate
 * and delete. How a change is made safely (transaction, idempotency, checks, cache publication)
 * is KeyChanges' (key-change.ts).
 */
export class KeyManagement extends KeyChanges {
  async create(actor: Actor, body: CreateKeyBody, idem?: IdempotencyRequest): Promise<Outcome> {
    assertMayActFor(actor, body.user_id);
    this.checkPermissionSet(body.permission_set);
    this.checkPlan(body.plan);
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
              plan: body.plan ?? null,
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
          plan: key.plan,
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
    this.checkPlan(body.plan);
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
        plan: body.plan,
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
