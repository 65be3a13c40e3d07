import Stripe from 'stripe';

const stripe = new Stripe('sk_test_unused');
let seq = 0;

/** A Stripe event as Stripe sends it; `created` in seconds, defaulting to now. */
export function stripeEvent(type: string, object: Record<string, unknown>, created = Math.floor(Date.now() / 1000)) {
  seq += 1;
  return { id: `evt_test_${Date.now()}_${seq}`, object: 'event', type, created, api_version: '2025-09-30', data: { object } };
}

/** POSTs an event to /webhooks/stripe, signed as Stripe signs it (or with the signature given). */
export async function deliverStripeEvent(apiUrl: string, evt: unknown, opts: { secret: string; signature?: string }) {
  const payload = JSON.stringify(evt);
  const signature = opts.signature ?? stripe.webhooks.generateTestHeaderString({ payload, secret: opts.secret });
  const res = await fetch(`${apiUrl}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': signature },
    body: payload,
  });
  return { status: res.status, body: (await res.json()) as { outcome?: string; error?: string; request_id?: string } };
}
