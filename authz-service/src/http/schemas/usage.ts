import { z } from 'zod';
import { resolveUsageRange, UsageRangeError } from '@tollgate/usage-model';
import { instant, named } from './common.js';

// --- Usage (issue: billing) ---------------------------------------------------------------

// At most 11 digits of Unix seconds (year 5138) and four-digit ISO years: every answer's
// instants stay RFC 3339 date-times.
const usageTime = z
  .string()
  .regex(
    /^(\d{1,11}|\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)?)?)$/,
    'an ISO 8601 time or Unix seconds',
  )
  .describe('ISO 8601 time or Unix seconds; rounded to whole UTC hours');
/** from/to alone, for query schemas to extend; routes take them refined by withUsageRange. */
export const UsageRangeFields = z.strictObject({ from: usageTime.optional(), to: usageTime.optional() });

/** What the query schema cannot say in OpenAPI; each usage read's description repeats it. */
export const USAGE_RANGE_RULE =
  'Range rules the schema cannot express (a 400 invalid_request naming the field): `from` must be before `to`; the range may span at most 400 days; it must end by 9999-12-31. Default: the 30 days before `to` (or now).';
const LAST_USAGE_INSTANT = Date.UTC(9999, 11, 31);

/** Checks the range as the reads will (usage-model's resolveUsageRange), so a bad one names its field. */
export function withUsageRange<T extends z.ZodObject>(schema: T): T {
  return schema.superRefine((query, ctx) => {
    const range = query as { from?: string; to?: string };
    try {
      if (resolveUsageRange(range).to.getTime() > LAST_USAGE_INSTANT) {
        ctx.addIssue({ code: 'custom', path: ['to'], message: 'the range must end by 9999-12-31' });
      }
    } catch (err) {
      if (!(err instanceof UsageRangeError)) throw err;
      ctx.addIssue({ code: 'custom', path: [err.message.startsWith('to ') ? 'to' : 'from'], message: err.message });
    }
  });
}
export const UsageQuery = withUsageRange(UsageRangeFields);
export const KeyUsageQuery = withUsageRange(UsageRangeFields.extend({ granularity: z.enum(['hour', 'day']).default('day') }));

const usageTotals = {
  total_requests: z.number().int().describe('Every logged request with this identity, the gateway’s own refusals included'),
  billable_requests: z.number().int().describe('What billing charges: never a request the gateway refused'),
  refused_requests: z.number().int().describe('Requests the gateway itself refused (scope, provider credential, rate limit): recorded, never billable'),
  request_bytes: z.number(),
  response_bytes: z.number(),
  avg_duration_ms: z.number(),
  cost_units: z.number().int().describe('Cost units of every request: ROUTE_COSTS’ weights, 1 per request on unweighted routes'),
  billable_cost_units: z.number().int().describe('Cost units of the billable requests: what is sent to Stripe'),
};
const usageBySource = named(
  z.object({
    provider: z.string().nullable().describe('The provider the requests were for; null: not a provider route'),
    credential_source: z
      .enum(['byok', 'user', 'operator'])
      .nullable()
      .describe('Whose credential served them: the client’s own (byok), the user’s stored one, or the operator’s (managed usage)'),
    total_requests: usageTotals.total_requests,
    billable_requests: usageTotals.billable_requests,
    refused_requests: usageTotals.refused_requests,
    cost_units: usageTotals.cost_units,
    billable_cost_units: usageTotals.billable_cost_units,
  }),
  'UsageBySource',
  'One provider and credential source’s share of the totals (docs/billing.md, "Cost allocation and managed usage")',
);
const bySource = z.array(usageBySource).describe('The totals by provider and credential source, most cost units first');
export const UserUsageRecord = named(
  z.object({
    user_id: z.string(),
    from: instant,
    to: instant,
    ...usageTotals,
    by_source: bySource,
    keys: z.array(z.object({ key_id: z.string(), credential: z.string(), last_request_at: instant.nullable(), ...usageTotals })),
  }),
  'UserUsage',
  'Requests in the range, in total, by provider and credential source, and per key (what billing will charge: billable_cost_units).',
);
const usageSeries = {
  from: instant,
  to: instant,
  granularity: z.enum(['hour', 'day']),
  last_request_at: instant.nullable(),
  ...usageTotals,
  by_source: bySource,
  buckets: z.array(z.object({ start: instant, ...usageTotals })),
};
export const KeyUsageRecord = named(
  z.object({
    key_id: z.string(),
    user_id: z.string().nullable(),
    credential: z.string().nullable(),
    quota: z
      .object({ monthly_quota: z.number().int(), used: z.number().int(), remaining: z.number().int(), resets_at: instant })
      .nullable()
      .describe('This calendar month (UTC), in cost units; null: the key has no monthly quota'),
    ...usageSeries,
  }),
  'KeyUsage',
);
export const TokenUsageRecord = named(
  z.object({
    jti: z.string(),
    credential: z.literal('service_token'),
    project: z.string().nullable().describe('As recorded with the requests (null without any in the range)'),
    service: z.string().nullable(),
    ...usageSeries,
  }),
  'TokenUsage',
  'A service token’s requests in the range, per bucket. Tokens have no Stripe customer: their billable requests are never sent to Stripe.',
);
