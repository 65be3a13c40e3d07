import { z } from 'zod';
import { named } from './common.js';

/** GET /api/plans: the plans of PLANS, as configured (docs/billing.md, "Plans"). */
export const PlanList = named(
  z.object({
    object: z.literal('list'),
    data: z.array(
      z.object({
        name: z.string(),
        rate_limit_per_minute: z.number().int().nullable().describe('null: the plan sets none (DEFAULT_RATE_LIMIT_PER_MINUTE applies)'),
        rate_limit_per_day: z.number().int().nullable().describe('null: the plan sets none (DEFAULT_RATE_LIMIT_PER_DAY applies)'),
        monthly_quota: z.number().int().nullable().describe('Cost units per calendar month (UTC); null: no quota'),
        scopes: z.array(z.string()).nullable().describe('The most a key on the plan is granted; null: the plan does not limit scopes'),
        stripe_price: z.string().nullable(),
        stripe_lookup_key: z.string().nullable(),
      }),
    ),
  }),
  'PlanList',
);
