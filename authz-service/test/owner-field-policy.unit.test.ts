import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ApiKey } from '../src/domain/api-key.js';
import { PlanCatalog } from '../src/domain/plans.js';
import { permissionSets } from '../src/domain/scopes.js';
import { FieldNotAllowedError, OwnerFieldPolicy, RESERVED_METADATA_KEYS } from '../src/http/owner-field-policy.js';
import type { CreateKeyBody, UpdateKeyBody } from '../src/http/schemas/keys.js';
import { apiKey } from './checker-fakes.js';

// The owner field policy on its own (the HTTP cases, with rows and audit log checked unchanged,
// are in management-security.int.test.ts).
const policy = new OwnerFieldPolicy({
  sets: permissionSets({ reader_writer: ['read', 'write'] }),
  plans: new PlanCatalog(
    [{ name: 'pro', rateLimitPerMinute: 500, rateLimitPerDay: null, monthlyQuota: 1000, scopes: null, stripePrice: 'price_pro', stripeLookupKey: null }],
    { perMinute: 60, perDay: null },
  ),
  rotationGraceSeconds: 3600,
});

// The key the cases start from; fields not named are apiKey()'s defaults (checker-fakes.ts).
const key = (over: Partial<ApiKey> = {}): ApiKey =>
  apiKey({
    id: 'key_00000000000000000000',
    userId: 'alice',
    name: 'k',
    keyPrefix: 'sk_x',
    scopes: [],
    permissionSet: 'reader_writer',
    rateLimitPerMinute: 100,
    expiresAt: new Date('2030-01-01T00:00:00Z'),
    metadata: { byok: false, team: 'a' },
    stripeCustomerId: 'cus_alice',
    createdBy: 'admin',
    ...over,
  });

function refusedField(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FieldNotAllowedError);
    const e = err as FieldNotAllowedError;
    expect(e.status).toBe(403);
    expect(e.toBody()).toMatchObject({ error: 'field_not_allowed', field: e.field });
    expect(e.message).toContain(e.field);
    return e.field;
  }
  throw new Error('expected the policy to refuse');
}

describe('owner field policy: PATCH', () => {
  const none = { suspendedBy: null };
  it.each([
    ['rate_limit_per_minute raised', { rate_limit_per_minute: 101 }, 'rate_limit_per_minute'],
    ['rate_limit_per_minute removed', { rate_limit_per_minute: null }, 'rate_limit_per_minute'],
    ['stripe customer removed (usage never billed)', { stripe_customer_id: null }, 'stripe_customer_id'],
    ['stripe customer changed', { stripe_customer_id: 'cus_other' }, 'stripe_customer_id'],
    ['scopes widened', { scopes: ['keys:manage'] }, 'scopes'],
    ['permission set widened', { permission_set: 'full_access' }, 'permission_set'],
    ['byok set', { metadata: { byok: true, team: 'a' } }, 'metadata.byok'],
    ['byok dropped', { metadata: { team: 'a' } }, 'metadata.byok'],
    ['admin suspension lifted', { is_active: true }, 'is_active'],
    ['plan set', { plan: 'pro' }, 'plan'],
  ] as [string, UpdateKeyBody, string][])('refuses: %s', (_name, body, field) => {
    const current = key({ isActive: !('is_active' in body) });
    expect(refusedField(() => policy.update(current, body, { suspendedBy: 'admin' }))).toBe(field);
  });

  it('allows narrowing, lowering, renaming, suspending, and sending current values', () => {
    const current = key();
    for (const body of [
      { name: 'x', description: 'y' },
      { rate_limit_per_minute: 100 },
      { rate_limit_per_minute: 1, rate_limit_per_day: 5 },
      { permission_set: 'read_only' },
      { permission_set: null, scopes: ['read:/reports/'] },
      { metadata: { byok: false, note: 'mine' } },
      { stripe_customer_id: 'cus_alice' },
      { is_active: false },
    ]) {
      expect(() => policy.update(current, body, none), JSON.stringify(body)).not.toThrow();
    }
  });

  it('a null limit may be set only up to the default; an owner may lift its own suspension', () => {
    const unlimited = key({ rateLimitPerMinute: null });
    expect(() => policy.update(unlimited, { rate_limit_per_minute: 60 }, none)).not.toThrow();
    expect(refusedField(() => policy.update(unlimited, { rate_limit_per_minute: 61 }, none))).toBe('rate_limit_per_minute');
    const suspended = key({ isActive: false });
    expect(() => policy.update(suspended, { is_active: true }, { suspendedBy: 'key:key_11111111111111111111' })).not.toThrow();
    expect(refusedField(() => policy.update(suspended, { is_active: true }, none))).toBe('is_active');
  });
});

describe('owner field policy: limits under a plan', () => {
  const onPlan = key({ plan: 'pro', rateLimitPerMinute: null, monthlyQuota: null });

  it('a key without limits of its own is bounded by its plan’s, not the default', () => {
    expect(() => policy.update(onPlan, { rate_limit_per_minute: 500, monthly_quota: 1000 }, { suspendedBy: null })).not.toThrow();
    expect(refusedField(() => policy.update(onPlan, { rate_limit_per_minute: 501 }, { suspendedBy: null }))).toBe('rate_limit_per_minute');
    expect(refusedField(() => policy.update(onPlan, { monthly_quota: 1001 }, { suspendedBy: null }))).toBe('monthly_quota');
    expect(() => policy.update(onPlan, { plan: 'pro' }, { suspendedBy: null })).not.toThrow();
    expect(refusedField(() => policy.update(onPlan, { plan: null }, { suspendedBy: null }))).toBe('plan');
  });

  it('a key created by an owner on a plan stays on it, within its limits', () => {
    const made = policy.create(onPlan, { user_id: 'alice', name: 'new', rate_limit_per_minute: 400 }, undefined);
    expect(made).toMatchObject({ plan: 'pro', rateLimitPerMinute: 400, monthlyQuota: null });
    expect(refusedField(() => policy.create(onPlan, { user_id: 'alice', name: 'new', plan: null }, undefined))).toBe('plan');
    expect(refusedField(() => policy.create(onPlan, { user_id: 'alice', name: 'new', monthly_quota: 5000 }, undefined))).toBe('monthly_quota');
  });
});

describe('owner field policy: create, extend, rotate', () => {
  const creator = key();
  const body = { user_id: 'alice', name: 'new' };

  it('a silent body inherits the creator’s limits, expiry, customer and reserved metadata', () => {
    expect(policy.create(creator, { ...body, metadata: { team: 'b' } }, undefined)).toEqual({
      rateLimitPerMinute: 100,
      rateLimitPerDay: null,
      monthlyQuota: null,
      plan: null,
      expiresAt: creator.expiresAt,
      stripeCustomerId: 'cus_alice',
      metadata: { byok: false, team: 'b' },
    });
  });

  it.each([
    ['higher limit', { rate_limit_per_minute: 101 }, undefined, 'rate_limit_per_minute'],
    ['no limit', { rate_limit_per_minute: null }, undefined, 'rate_limit_per_minute'],
    ['another customer', { stripe_customer_id: 'cus_bob' }, undefined, 'stripe_customer_id'],
    ['no customer', { stripe_customer_id: null }, undefined, 'stripe_customer_id'],
    ['byok', { metadata: { byok: true } }, undefined, 'metadata.byok'],
    ['another plan', { plan: 'pro' }, undefined, 'plan'],
    ['never expires', { expires_at: null }, null, 'expires_at'],
    ['expires later', { expires_in_days: 3650 }, new Date('2035-01-01T00:00:00Z'), 'expires_in_days'],
  ] as [string, Partial<CreateKeyBody>, Date | null | undefined, string][])('refuses %s', (_name, extra, expiry, field) => {
    expect(refusedField(() => policy.create(creator, { ...body, ...extra }, expiry))).toBe(field);
  });

  it('extend only shortens; rotate keeps the grace within ROTATION_GRACE_SECONDS', () => {
    expect(() => policy.extend(creator, new Date('2029-01-01T00:00:00Z'), 'expires_at')).not.toThrow();
    expect(refusedField(() => policy.extend(creator, null, 'expires_at'))).toBe('expires_at');
    expect(refusedField(() => policy.extend(creator, new Date('2031-01-01T00:00:00Z'), 'days'))).toBe('days');
    expect(() => policy.extend(key({ expiresAt: null }), new Date('2031-01-01T00:00:00Z'), 'days')).not.toThrow();
    expect(() => policy.rotate(3600)).not.toThrow();
    expect(refusedField(() => policy.rotate(3601))).toBe('grace_seconds');
  });
});

describe('reserved metadata keys', () => {
  it('cover every key metadata field the gateway reads', () => {
    // Any `.metadata['x']` / `.metadata.x` read in the Check is an operator setting: it must be reserved.
    const dir = join(import.meta.dirname, '../src/check');
    const read = new Set<string>();
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const src = readFileSync(join(dir, file), 'utf8');
      for (const m of src.matchAll(/\.metadata(?:\[['"]([A-Za-z0-9_]+)['"]\]|\.([A-Za-z_][A-Za-z0-9_]*))/g)) read.add(m[1] ?? m[2]!);
    }
    expect(read.size).toBeGreaterThan(0);
    expect([...read].filter((k) => !RESERVED_METADATA_KEYS.includes(k))).toEqual([]);
  });
});
