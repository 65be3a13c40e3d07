import { z } from 'zod';
import { instant, named } from './common.js';

export const BillingStatusQuery = z.strictObject({
  stripe_customer_id: z
    .string()
    .regex(/^cus_[A-Za-z0-9]{1,64}$/)
    .optional(),
});
export const BillingStatusRecord = named(
  z.object({
    pending_events: z.number().int(),
    oldest_pending_at: instant.nullable(),
    parked_events: z.array(
      z.object({
        identifier: z.string(),
        stripe_customer_id: z.string(),
        value: z.number(),
        window_start: instant,
        status: z.number().int().nullable(),
        error: z.string().nullable(),
      }),
    ),
    meter_errors: z
      .array(
        z.object({
          event_id: z.string(),
          type: z.string().describe('v1.billing.meter.error_report_triggered or v1.billing.meter.no_meter_found'),
          at: instant,
          meter_id: z.string().nullable(),
          summary: z.string().nullable().describe('Stripe’s developer message summary, when the event carried one'),
        }),
      )
      .describe('The latest meter alerts Stripe sent to POST /webhooks/stripe (at most 20, newest first)'),
  }),
  'BillingStatus',
  'Meter events Stripe has not accepted yet, and those it refused (parked, with Stripe’s error).',
);
