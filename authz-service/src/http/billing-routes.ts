import { z } from 'zod';
import { StripeWebhooks } from '../billing/stripe-webhook.js';
import type { ServiceDeps } from '../deps.js';
import { defineRoute, type RouteSpec } from './routes.js';
import { ErrorResponse } from './schemas/common.js';

const WebhookAnswer = z.object({
  received: z.literal(true),
  outcome: z.enum(['applied', 'duplicate', 'stale', 'ignored']),
});

/** One receiver per service (its metric registers once), however often the routes are listed. */
const receivers = new WeakMap<ServiceDeps, StripeWebhooks>();

function receiverFor(deps: ServiceDeps): StripeWebhooks {
  let r = receivers.get(deps);
  if (!r) {
    r = new StripeWebhooks({
      pool: deps.pool,
      keyEvents: deps.keyEvents,
      logger: deps.logger,
      secrets: deps.config.STRIPE_WEBHOOK_SECRET ?? [],
      registry: deps.registry,
      plans: deps.plans,
    });
    receivers.set(deps, r);
  }
  return r;
}

export function billingRoutes(deps: ServiceDeps): RouteSpec[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/webhooks/stripe',
      operationId: 'receiveStripeWebhook',
      summary: 'Stripe webhook receiver (subscription lifecycle)',
      description:
        'Authenticated only by `Stripe-Signature` (STRIPE_WEBHOOK_SECRET), verified over the raw body. Each event applies once; an event older than the last applied one for the same Stripe object is ignored. See docs/billing.md.',
      tag: 'billing',
      // No credential: the handler verifies the body's Stripe signature itself (billing/stripe-webhook.ts).
      authentication: 'none',
      requiredHeaders: [{ name: 'Stripe-Signature', description: 'Stripe’s signature over the raw body; one that does not verify is 400' }],
      responses: {
        200: { description: 'Received (applied, a replay, out of order, or a type Tollgate ignores)', schema: WebhookAnswer },
        400: { description: 'The signature does not verify; nothing changed', schema: ErrorResponse },
      },
      handler: async ({ request }) => {
        const receiver = receiverFor(deps);
        const signature = request.headers['stripe-signature'];
        const event = receiver.verify(request.rawBody, typeof signature === 'string' ? signature : undefined);
        return { status: 200, body: { received: true, outcome: await receiver.apply(event) } };
      },
    }),
  ];
}
