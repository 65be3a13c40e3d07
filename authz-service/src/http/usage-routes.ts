import { HttpError } from '@tollgate/common';
import { keyQuota } from './key-quota.js';
import { readBillingStatus, readKeyUsage, readTokenUsage, readUserUsage, UsageRangeError } from '@tollgate/usage-model';
import type { ServiceDeps } from '../deps.js';
import { assertMayActFor, ownsKey } from './auth.js';
import { notFound } from './errors.js';
import { defineRoute, type RouteResponse, type RouteSpec } from './routes.js';
import { requireAdmin } from './token-routes.js';
import { ErrorResponse, KeyIdParams, UserIdParams } from './schemas/common.js';
import { TokenJtiParams } from './schemas/tokens.js';
import { BillingStatusQuery, BillingStatusRecord } from './schemas/billing.js';
import { KeyUsageQuery, KeyUsageRecord, TokenUsageRecord, USAGE_RANGE_RULE, UsageQuery, UserUsageRecord } from './schemas/usage.js';

const error = (description: string): RouteResponse => ({ description, schema: ErrorResponse });
const common = {
  400: error('Bad range (from/to) or parameters'),
  401: error('Missing or invalid credential'),
  403: error('A keys:manage key reads only its own user’s usage'),
  503: error('Usage tables are missing: billing-sidecar has not run against this database'),
};
const TAG = 'usage';

/** Reads billing-sidecar's roll-ups; its tables exist once the sidecar has started once. */
export async function usageCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof UsageRangeError) throw new HttpError(400, 'invalid_request', err.message);
    if ((err as { code?: string }).code === '42P01') {
      throw new HttpError(503, 'usage_unavailable', 'Usage is not recorded in this database yet: start billing-sidecar against it');
    }
    throw err;
  }
}

/** What billing will charge, per user and per key (docs/billing.md). */
/** Stripe's meter alerts, as the webhook receiver recorded them (billing/stripe-webhook.ts). */
async function latestMeterErrors(pool: ServiceDeps['pool']) {
  const r = await pool.query<{ event_id: string; type: string; at: Date; meter_id: string | null; summary: string | null }>(
    `select event_id, type, at, details->>'meter_id' as meter_id, details->>'summary' as summary from billing_events
      where type like 'v1.billing.meter.%' order by at desc, id desc limit 20`,
  );
  return r.rows.map((e) => ({ ...e, at: e.at.toISOString() }));
}

export function usageRoutes(deps: ServiceDeps): RouteSpec[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/api/usage/:user_id',
      operationId: 'getUserUsage',
      tag: TAG,
      summary: 'A user’s usage over a range, with a per-key breakdown',
      description: [
        'Default range: the last 30 days. total_requests counts every logged request with this identity; billable_requests what billing charges.',
        USAGE_RANGE_RULE,
      ].join(' '),
      params: UserIdParams,
      query: UsageQuery,
      responses: { 200: { description: 'Usage', schema: UserUsageRecord }, ...common },
      handler: async ({ params, query, actor }) => {
        assertMayActFor(actor, params.user_id);
        return { status: 200, body: await usageCall(() => readUserUsage(deps.pool, params.user_id, query)) };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/keys/:id/usage',
      operationId: 'getKeyUsage',
      tag: TAG,
      summary: 'One key’s usage over a range, per hour or per day',
      description: USAGE_RANGE_RULE,
      params: KeyIdParams,
      query: KeyUsageQuery,
      responses: { 200: { description: 'Usage', schema: KeyUsageRecord }, ...common, 404: error('No such key (or another user’s)') },
      handler: async ({ params, query, actor }) => {
        const key = await deps.keyStore.getById(params.id);
        // Admins may read a deleted key's history; owners only their own existing keys.
        if (actor.kind !== 'admin' && (!key || !ownsKey(actor, key.userId))) throw notFound('key');
        const usage = await usageCall(() => readKeyUsage(deps.pool, params.id, query));
        return { status: 200, body: { ...usage, quota: key ? await keyQuota(deps, key) : null } };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/tokens/:jti/usage',
      operationId: 'getServiceTokenUsage',
      tag: TAG,
      summary: 'One service token’s usage over a range, per hour or per day (admin only)',
      description: [
        'The same buckets as a key’s usage, attributed to the token’s jti, project and service. Tokens have no Stripe customer, so nothing here reaches Stripe.',
        USAGE_RANGE_RULE,
      ].join(' '),
      params: TokenJtiParams,
      query: KeyUsageQuery,
      responses: {
        200: { description: 'Usage', schema: TokenUsageRecord },
        ...common,
        403: error('Service tokens are operator objects: an admin token only'),
        404: error('No such service token'),
      },
      handler: async ({ params, query, actor }) => {
        requireAdmin(actor);
        // Tokens are revoked, never deleted: one missing from the registry never existed here.
        if (!(await deps.tokenStore.get(params.jti))) throw notFound('service token');
        return { status: 200, body: await usageCall(() => readTokenUsage(deps.pool, params.jti, query)) };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/billing/status',
      operationId: 'getBillingStatus',
      tag: TAG,
      summary: 'Stripe delivery: pending meter events and parked ones with Stripe’s error (admin only)',
      query: BillingStatusQuery,
      responses: { 200: { description: 'Billing status', schema: BillingStatusRecord }, ...common },
      handler: async ({ query, actor }) => {
        if (actor.kind !== 'admin') throw new HttpError(403, 'forbidden', 'Billing status needs an admin token');
        const status = await usageCall(() => readBillingStatus(deps.pool, { stripeCustomerId: query.stripe_customer_id }));
        return { status: 200, body: { ...status, meter_errors: await latestMeterErrors(deps.pool) } };
      },
    }),
  ];
}
