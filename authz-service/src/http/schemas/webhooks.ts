import { z } from 'zod';
import { WEBHOOK_EVENT_TYPES } from '../../webhooks/events.js';
import { WEBHOOK_ENDPOINT_ID_RE } from '../../webhooks/endpoint-service.js';
import { instant, named } from './common.js';

const eventType = z.enum(WEBHOOK_EVENT_TYPES);
const events = z
  .array(eventType)
  .min(1, 'at least one event type')
  .max(WEBHOOK_EVENT_TYPES.length)
  .refine((list) => new Set(list).size === list.length, 'each event type once')
  .describe('The event types this endpoint receives');
const url = z.string().min(1).max(2048).describe('Where deliveries are POSTed: http(s) only; non-public addresses need WEBHOOK_ALLOW_PRIVATE_TARGETS');
const endpointDescription = z.string().max(500).nullable();

export const WebhookEndpointParams = z.strictObject({ endpoint_id: z.string().regex(WEBHOOK_ENDPOINT_ID_RE, 'a webhook endpoint id (whe_…)') });
export const WebhookDeliveryParams = z.strictObject({ delivery_id: z.string().regex(/^msg_[0-9a-f]{32}$/, 'a webhook delivery id (msg_…)') });

export const CreateWebhookEndpointBody = named(
  z.strictObject({ url, events, description: endpointDescription.optional(), enabled: z.boolean().optional() }),
  'CreateWebhookEndpointRequest',
);
export const UpdateWebhookEndpointBody = named(
  z
    .strictObject({ url: url.optional(), events: events.optional(), description: endpointDescription.optional(), enabled: z.boolean().optional() })
    .refine((b) => Object.keys(b).length > 0, 'name at least one field to change'),
  'UpdateWebhookEndpointRequest',
);
export const RotateWebhookSecretBody = named(
  z.strictObject({
    grace_seconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 86_400)
      .optional()
      .describe('How long the previous secret keeps signing too (default 86400; 0 stops it now)'),
  }),
  'RotateWebhookSecretRequest',
);

export const WebhookEndpoint = named(
  z.object({
    object: z.literal('webhook_endpoint'),
    id: z.string(),
    url: z.string(),
    description: z.string().nullable(),
    events: z.array(eventType),
    enabled: z.boolean(),
    created_at: instant,
    updated_at: instant,
    secret_rotated_at: instant.nullable(),
    previous_secret_expires_at: instant.nullable().describe('Until then deliveries carry a second signature, made with the previous secret'),
  }),
  'WebhookEndpoint',
  'An outbound webhook endpoint (its signing secret is shown only when created or rotated)',
);
export const WebhookEndpointWithSecret = named(
  WebhookEndpoint.extend({ secret: z.string().describe('The signing secret (whsec_…), shown this once: verify deliveries with it') }),
  'WebhookEndpointWithSecret',
);
export const WebhookEndpointList = named(z.object({ object: z.literal('list'), data: z.array(WebhookEndpoint) }), 'WebhookEndpointList');
export const DeletedWebhookEndpoint = named(
  z.object({ object: z.literal('webhook_endpoint'), id: z.string(), deleted: z.literal(true) }),
  'DeletedWebhookEndpoint',
);

const deliveryStatus = z.enum(['pending', 'delivered', 'failed']);
export const WebhookDelivery = named(
  z.object({
    object: z.literal('webhook_delivery'),
    id: z.string().describe('Also the `webhook-id` header: the same on every attempt, so receivers can drop repeats'),
    endpoint_id: z.string(),
    event_type: eventType,
    status: deliveryStatus.describe('pending (queued or retrying), delivered (a 2xx answer), failed (parked after WEBHOOK_MAX_ATTEMPTS)'),
    attempts: z.number().int(),
    next_attempt_at: instant.nullable(),
    last_attempt_at: instant.nullable(),
    last_status: z.number().int().nullable().describe('The receiver’s HTTP status on the last attempt (null: no answer)'),
    last_error: z.string().nullable(),
    created_at: instant,
    delivered_at: instant.nullable(),
    payload: z.object({ type: eventType, timestamp: instant, data: z.record(z.string(), z.unknown()) }),
  }),
  'WebhookDelivery',
);
export const WebhookDeliveryList = named(
  z.object({ object: z.literal('list'), data: z.array(WebhookDelivery), next_cursor: z.string().nullable() }),
  'WebhookDeliveryList',
);
export const WebhookDeliveriesQuery = z.strictObject({
  endpoint_id: WebhookEndpointParams.shape.endpoint_id.optional(),
  status: deliveryStatus.optional(),
  event_type: eventType.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,200}$/, 'the next_cursor of the previous page')
    .optional(),
});
