import { z } from 'zod';
import { instant, named } from './common.js';
import { UsageRangeFields, withUsageRange } from './usage.js';

const count = z.number().int().min(0);

// --- Usage by outcome class ------------------------------------------------------------------

const outcomeCounts = {
  allowed: count.describe('2xx and 3xx'),
  unauthenticated: count.describe('401'),
  forbidden: count.describe('403'),
  rate_limited: count.describe('429'),
  server_error: count.describe('5xx'),
  other: count.describe('Anything else, and rows rolled up before outcome classes existed'),
};
const OutcomeCounts = named(z.object(outcomeCounts), 'OutcomeCounts');

export const SeriesQuery = withUsageRange(UsageRangeFields.extend({ bucket: z.enum(['hour', 'day']).default('day') }));

export const OutcomeSeries = named(
  z.object({
    bucket: z.enum(['hour', 'day']),
    from: instant,
    to: instant,
    points: z.array(z.object({ t: instant, ...outcomeCounts })),
  }),
  'OutcomeSeries',
  'Requests by outcome class per bucket (UTC), every bucket of the range, oldest first.',
);

export const KeysUsageQuery = withUsageRange(
  UsageRangeFields.extend({
    ids: z
      .string()
      .regex(/^key_[A-Za-z0-9]{20}(,key_[A-Za-z0-9]{20}){0,99}$/, 'up to 100 key ids, comma-separated')
      .describe('Key ids, comma-separated (at most 100: a page of the key list)'),
  }),
);

export const KeysUsage = named(
  z.object({
    from: instant,
    to: instant,
    data: z.record(
      z.string(),
      z.object({
        requests: count,
        by_outcome: OutcomeCounts,
        last_used_at: instant.nullable(),
        daily: z.array(count).describe('Requests per UTC day of the range'),
      }),
    ),
  }),
  'KeysUsage',
);

// --- Operator overview -----------------------------------------------------------------------

export const OverviewRecord = named(
  z.object({
    series: OutcomeSeries,
    top_keys: z.array(
      z.object({
        id: z.string(),
        user_id: z.string().nullable(),
        credential: z.string(),
        name: z.string().nullable().describe('The key’s name, or project/service for a service token; null once it is deleted'),
        requests: count,
      }),
    ),
    top_users: z.array(z.object({ id: z.string(), requests: count })),
    denials: z.array(z.object({ error_code: z.string(), requests: count })),
    billing: z.object({
      pending_events: count,
      oldest_pending_at: instant.nullable(),
      parked_events: z.array(z.record(z.string(), z.unknown())),
    }),
  }),
  'Overview',
  'All traffic by outcome class, the heaviest keys and users, denials by error code, and Stripe delivery health.',
);
