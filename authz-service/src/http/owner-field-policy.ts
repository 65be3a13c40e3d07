import { isDeepStrictEqual } from 'node:util';
import { HttpError } from '@tollgate/common';
import type { ApiKey } from '../domain/api-key.js';
import type { PlanCatalog } from '../domain/plans.js';
import { effectiveScopes } from '../domain/scopes.js';
import { scopeCovered } from './auth.js';
import type { CreateKeyBody, UpdateKeyBody } from './schemas/keys.js';

/**
 * What a `keys:manage` owner key may change, and within which bounds (docs/management-api.md,
 * "What an owner key may change"). An admin token is not bound by any of this. The operator
 * controls billing (stripe_customer_id, plan), suspension, the ceiling of limits, expiry and
 * scopes, and the metadata the gateway reads; an owner may only narrow what it was given.
 */

/**
 * Metadata keys the gateway itself reads, so they are settings of the operator, not notes of the
 * owner: `byok` (check/provider-injector.ts) overrides PROVIDER_BYOK for one key, and
 * `managed_providers` (check/managed-providers.ts) lets a key use the operator's credentials. A test scans
 * the Check's sources for metadata reads, so a new one cannot be forgotten here.
 */
export const RESERVED_METADATA_KEYS: readonly string[] = ['byok', 'managed_providers'];

/** 403 naming the one field an owner may not set as asked; nothing is changed. */
export class FieldNotAllowedError extends HttpError {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(403, 'field_not_allowed', `A keys:manage key may not ${reason} (field "${field}"); an admin token can`);
  }

  override toBody() {
    return { ...super.toBody(), field: this.field };
  }
}

export interface OwnerPolicySettings {
  sets: Record<string, readonly string[]>;
  /** What a key's null limit means: its plan's, else DEFAULT_RATE_LIMIT_* (else unlimited). */
  plans: PlanCatalog;
  /** ROTATION_GRACE_SECONDS: the longest an owner may keep a rotated secret working. */
  rotationGraceSeconds: number;
}

/** What an owner's new key gets: the body's values where allowed, the creating key's where the body is silent. */
export interface OwnerCreateValues {
  rateLimitPerMinute: number | null;
  rateLimitPerDay: number | null;
  monthlyQuota: number | null;
  plan: string | null;
  expiresAt: Date | null;
  stripeCustomerId: string | null;
  metadata: Record<string, unknown>;
}

const LIMIT_FIELDS = [
  ['rate_limit_per_minute', 'rateLimitPerMinute'],
  ['rate_limit_per_day', 'rateLimitPerDay'],
  ['monthly_quota', 'monthlyQuota'],
] as const;

/**
 * A limit may go down, never up, and never to null (the plan's, the default, or unlimited)
 * while one is set; without one, not above what null means (`whenNull`).
 */
function assertLowerOrEqual(field: string, ceiling: number | null, next: number | null, whenNull: number | null): void {
  if (ceiling !== null) {
    if (next === null) throw new FieldNotAllowedError(field, `remove the limit of ${ceiling}`);
    if (next > ceiling) throw new FieldNotAllowedError(field, `raise the limit above ${ceiling}`);
  } else if (next !== null && whenNull !== null && next > whenNull) {
    throw new FieldNotAllowedError(field, `raise the limit above the one that applies (${whenNull}, its plan's or the default)`);
  }
}

/** An expiry may come sooner, never later, and is never removed. */
function assertNotLater(field: string, current: Date | null, next: Date | null): void {
  if (current === null) return;
  if (next === null) throw new FieldNotAllowedError(field, `remove the expiry (${current.toISOString()})`);
  if (next.getTime() > current.getTime()) throw new FieldNotAllowedError(field, `move the expiry past ${current.toISOString()}`);
}

/** An admin-only field: sending the value it already has is not a change, and is accepted. */
function assertUnchanged(field: string, current: unknown, next: unknown): void {
  if (!isDeepStrictEqual(current, next)) throw new FieldNotAllowedError(field, `change ${field}`);
}

function assertReservedMetadataKept(base: Record<string, unknown>, next: Record<string, unknown>): void {
  for (const k of RESERVED_METADATA_KEYS) {
    if (!isDeepStrictEqual(base[k], next[k])) throw new FieldNotAllowedError(`metadata.${k}`, `set metadata.${k}, which the gateway reads`);
  }
}

function reservedMetadataOf(metadata: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(RESERVED_METADATA_KEYS.filter((k) => k in metadata).map((k) => [k, metadata[k]]));
}

type UpdateRule<F extends keyof UpdateKeyBody> = (next: Exclude<UpdateKeyBody[F], undefined>, current: ApiKey, body: UpdateKeyBody, facts: UpdateFacts) => void;

/** What the policy needs to know beyond the key row. */
export interface UpdateFacts {
  /** The audit actor (`admin`, `key:<id>`) of the key's last suspension, if it is suspended. */
  suspendedBy: string | null;
}

export class OwnerFieldPolicy {
  /** One rule per field of PATCH /api/keys/:id: a new field does not compile until it has one. */
  private readonly updateRules: { [F in keyof UpdateKeyBody]-?: UpdateRule<F> };

  constructor(private readonly settings: OwnerPolicySettings) {
    const free = () => {};
    const narrowing = (_next: unknown, current: ApiKey, body: UpdateKeyBody) => this.assertNarrowing(current, body);
    this.updateRules = {
      name: free,
      description: free,
      rate_limit_per_minute: (next, current) =>
        assertLowerOrEqual('rate_limit_per_minute', current.rateLimitPerMinute, next, settings.plans.fallback(current.plan).rateLimitPerMinute),
      rate_limit_per_day: (next, current) =>
        assertLowerOrEqual('rate_limit_per_day', current.rateLimitPerDay, next, settings.plans.fallback(current.plan).rateLimitPerDay),
      monthly_quota: (next, current) => assertLowerOrEqual('monthly_quota', current.monthlyQuota, next, settings.plans.fallback(current.plan).monthlyQuota),
      plan: (next, current) => assertUnchanged('plan', current.plan, next),
      scopes: narrowing,
      permission_set: narrowing,
      metadata: (next, current) => assertReservedMetadataKept(current.metadata, next),
      stripe_customer_id: (next, current) => assertUnchanged('stripe_customer_id', current.stripeCustomerId, next),
      is_active: (next, current, _body, facts) => {
        // Suspending is always allowed; lifting a suspension only if an owner key made it.
        if (next && !current.isActive && !facts.suspendedBy?.startsWith('key:')) {
          throw new FieldNotAllowedError('is_active', 'reactivate a key an admin suspended');
        }
      },
    };
  }

  /** Scopes may narrow, never widen beyond what the key already holds. */
  private assertNarrowing(current: ApiKey, body: UpdateKeyBody): void {
    const held = effectiveScopes(current, this.settings.sets);
    const nextSet = body.permission_set !== undefined ? body.permission_set : current.permissionSet;
    const fromSet = nextSet ? (this.settings.sets[nextSet] ?? []) : [];
    const widerSet = fromSet.filter((s) => !scopeCovered(held, s));
    if (widerSet.length > 0) throw new FieldNotAllowedError('permission_set', `widen the key’s scopes (${widerSet.join(', ')})`);
    const wider = (body.scopes ?? current.scopes).filter((s) => !scopeCovered(held, s));
    if (wider.length > 0) throw new FieldNotAllowedError('scopes', `widen the key’s scopes (${wider.join(', ')})`);
  }

  /** PATCH by an owner: every field given must pass its rule against the locked current row. */
  update(current: ApiKey, body: UpdateKeyBody, facts: UpdateFacts): void {
    for (const field of Object.keys(this.updateRules) as (keyof UpdateKeyBody)[]) {
      const next = body[field];
      if (next === undefined) continue;
      (this.updateRules[field] as UpdateRule<typeof field>)(next as never, current, body, facts);
    }
  }

  /**
   * POST /api/keys by an owner: its new key is bounded by the key that creates it. Where the
   * body is silent the new key inherits the creator's limits, plan, expiry, Stripe customer and
   * reserved metadata, so a new key is never a way around them.
   */
  create(creator: ApiKey, body: CreateKeyBody, requestedExpiry: Date | null | undefined): OwnerCreateValues {
    const plan = body.plan === undefined ? creator.plan : body.plan;
    assertUnchanged('plan', creator.plan, plan);
    const whenNull = this.settings.plans.fallback(plan);
    const limits = {} as Pick<OwnerCreateValues, 'rateLimitPerMinute' | 'rateLimitPerDay' | 'monthlyQuota'>;
    for (const [field, prop] of LIMIT_FIELDS) {
      const next = body[field] === undefined ? creator[prop] : body[field];
      assertLowerOrEqual(field, creator[prop], next, whenNull[prop]);
      limits[prop] = next;
    }
    const expiresAt = requestedExpiry === undefined ? creator.expiresAt : requestedExpiry;
    assertNotLater(body.expires_in_days !== undefined ? 'expires_in_days' : 'expires_at', creator.expiresAt, expiresAt);
    const stripeCustomerId = body.stripe_customer_id === undefined ? creator.stripeCustomerId : body.stripe_customer_id;
    assertUnchanged('stripe_customer_id', creator.stripeCustomerId, stripeCustomerId);
    const inherited = reservedMetadataOf(creator.metadata);
    const metadata = { ...inherited, ...body.metadata };
    assertReservedMetadataKept(inherited, metadata);
    return { ...limits, plan, expiresAt, stripeCustomerId, metadata };
  }

  /** POST /api/keys/:id/extend by an owner: only sooner. */
  extend(current: ApiKey, next: Date | null, field: 'expires_at' | 'days'): void {
    assertNotLater(field, current.expiresAt, next);
  }

  /** POST /api/keys/:id/rotate by an owner: a new secret, and the old one no longer than the operator allows. */
  rotate(graceSeconds: number): void {
    if (graceSeconds > this.settings.rotationGraceSeconds) {
      throw new FieldNotAllowedError(
        'grace_seconds',
        `keep the old secret working longer than ROTATION_GRACE_SECONDS (${this.settings.rotationGraceSeconds} s)`,
      );
    }
  }
}
