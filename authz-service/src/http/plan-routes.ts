import type { ServiceDeps } from '../deps.js';
import { defineRoute, type RouteSpec } from './routes.js';
import { ErrorResponse } from './schemas/common.js';
import { PlanList } from './schemas/plans.js';

/** The plans of PLANS (docs/billing.md, "Plans"): configuration, so read-only here. */
export function planRoutes(deps: ServiceDeps): RouteSpec[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/api/plans',
      operationId: 'listPlans',
      tag: 'plans',
      summary: 'Plans: the limits, scopes and Stripe price of each plan in PLANS',
      description: 'An admin token or any keys:manage key may read them (they say what a subscription buys, nothing secret).',
      responses: {
        200: { description: 'Every configured plan, in PLANS order', schema: PlanList },
        401: { description: 'Missing or invalid credential (admin token or keys:manage key)', schema: ErrorResponse },
        403: { description: 'A key without keys:manage', schema: ErrorResponse },
      },
      handler: async () => ({
        status: 200,
        body: {
          object: 'list',
          data: deps.plans.list().map((p) => ({
            name: p.name,
            rate_limit_per_minute: p.rateLimitPerMinute,
            rate_limit_per_day: p.rateLimitPerDay,
            monthly_quota: p.monthlyQuota,
            scopes: p.scopes ? [...p.scopes] : null,
            stripe_price: p.stripePrice,
            stripe_lookup_key: p.stripeLookupKey,
          })),
        },
      }),
    }),
  ];
}
