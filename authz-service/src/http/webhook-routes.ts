import { HttpError } from '@tollgate/common';
import type { ServiceDeps } from '../deps.js';
import { AuditStore } from '../stores/audit-store.js';
import { inTransaction } from '../stores/transaction.js';
import { WebhookEndpointService } from '../webhooks/endpoint-service.js';
import type { WebhookEndpoint as Endpoint } from '../webhooks/endpoint-store.js';
import { actorLabel, type Actor } from './auth.js';
import { notFound } from './errors.js';
import { defineRoute, type RouteResponse, type RouteSpec } from './routes.js';
import { ErrorResponse } from './schemas/common.js';
import {
  CreateWebhookEndpointBody,
  DeletedWebhookEndpoint,
  RotateWebhookSecretBody,
  UpdateWebhookEndpointBody,
  WebhookDeliveriesQuery,
  WebhookDelivery,
  WebhookDeliveryList,
  WebhookDeliveryParams,
  WebhookEndpoint,
  WebhookEndpointList,
  WebhookEndpointParams,
  WebhookEndpointWithSecret,
} from './schemas/webhooks.js';
import { vaultCall } from './vault-routes.js';

const error = (description: string): RouteResponse => ({ description, schema: ErrorResponse });
const common = {
  400: error('The request does not match the schema, or the URL points somewhere deliveries may not go'),
  401: error('Missing or invalid credential'),
  403: error('Webhooks are for the admin token only'),
};
const TAG = 'webhooks';
const DEFAULT_GRACE_SECONDS = 86_400;

function adminOnly(actor: Actor): void {
  if (actor.kind !== 'admin') throw new HttpError(403, 'forbidden', 'Webhook endpoints and deliveries are managed with the admin token only');
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

function endpointJson(e: Endpoint) {
  return {
    object: 'webhook_endpoint' as const,
    id: e.id,
    url: e.url,
    description: e.description,
    events: e.events,
    enabled: e.enabled,
    created_at: e.createdAt.toISOString(),
    updated_at: e.updatedAt.toISOString(),
    secret_rotated_at: iso(e.secretRotatedAt),
    previous_secret_expires_at: iso(e.previousSecretExpiresAt),
  };
}

interface DeliveryRow {
  id: string;
  endpoint_id: string;
  event_type: string;
  payload: unknown;
  status: string;
  attempts: number;
  next_attempt_at: Date;
  last_attempt_at: Date | null;
  last_status: number | null;
  last_error: string | null;
  created_at: Date;
  delivered_at: Date | null;
}

function deliveryJson(r: DeliveryRow) {
  return {
    object: 'webhook_delivery' as const,
    id: r.id,
    endpoint_id: r.endpoint_id,
    event_type: r.event_type,
    status: r.status,
    attempts: r.attempts,
    next_attempt_at: r.status === 'pending' ? r.next_attempt_at.toISOString() : null,
    last_attempt_at: iso(r.last_attempt_at),
    last_status: r.last_status,
    last_error: r.last_error,
    created_at: r.created_at.toISOString(),
    delivered_at: iso(r.delivered_at),
    payload: r.payload,
  };
}

/** Keyset cursor over (created_at, id), newest first: opaque to clients. */
function encodeCursor(r: DeliveryRow): string {
  return Buffer.from(JSON.stringify([r.created_at.toISOString(), r.id])).toString('base64url');
}

function decodeCursor(cursor: string): [string, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && !Number.isNaN(Date.parse(v[0])) && typeof v[1] === 'string') return [v[0], v[1]];
  } catch {
    // answered below
  }
  throw new HttpError(400, 'invalid_request', 'query.cursor: not a next_cursor this API gave out');
}

const DELIVERY_COLUMNS = `id, endpoint_id, event_type, payload, status, attempts, next_attempt_at, last_attempt_at, last_status, last_error, created_at, delivered_at`;

/** Outbound webhooks (docs/webhooks.md): endpoints, their signing secrets, and the delivery log. */
export function webhookRoutes(deps: ServiceDeps): RouteSpec[] {
  // Built when a handler runs: the offline OpenAPI document lists these routes with no database.
  let service: WebhookEndpointService | undefined;
  const svc = () => (service ??= new WebhookEndpointService(deps.pool, deps.vault.envelope, deps.config.WEBHOOK_ALLOW_PRIVATE_TARGETS));
  const audit = new AuditStore();
  const withId = (e: Endpoint | null) => {
    if (!e) throw notFound();
    return e;
  };
  return [
    defineRoute({
      method: 'POST',
      url: '/api/webhook-endpoints',
      operationId: 'createWebhookEndpoint',
      tag: TAG,
      summary: 'Register a webhook endpoint (admin only); the answer carries its signing secret, shown once',
      description:
        'Deliveries are signed the Standard Webhooks way (webhook-id, webhook-timestamp, webhook-signature). Needs the vault (VAULT_MASTER_KEYS): the secret is sealed by it.',
      body: CreateWebhookEndpointBody,
      responses: { 201: { description: 'Registered', schema: WebhookEndpointWithSecret }, ...common, 409: error('The vault is off (VAULT_MASTER_KEYS unset)') },
      handler: async ({ body, actor }) => {
        adminOnly(actor);
        const { endpoint, secret } = await vaultCall(() =>
          svc().create({ url: body.url, events: body.events, description: body.description ?? null, enabled: body.enabled ?? true }, actorLabel(actor)),
        );
        return { status: 201, body: { ...endpointJson(endpoint), secret } };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/webhook-endpoints',
      operationId: 'listWebhookEndpoints',
      tag: TAG,
      summary: 'List webhook endpoints (admin only; never their secrets)',
      responses: { 200: { description: 'Every endpoint', schema: WebhookEndpointList }, ...common },
      handler: async ({ actor }) => {
        adminOnly(actor);
        return { status: 200, body: { object: 'list', data: (await svc().store.list()).map(endpointJson) } };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/webhook-endpoints/:endpoint_id',
      operationId: 'getWebhookEndpoint',
      tag: TAG,
      summary: 'One webhook endpoint (admin only)',
      params: WebhookEndpointParams,
      responses: { 200: { description: 'The endpoint', schema: WebhookEndpoint }, ...common, 404: error('No such endpoint') },
      handler: async ({ params, actor }) => {
        adminOnly(actor);
        return { status: 200, body: endpointJson(withId(await svc().store.get(params.endpoint_id))) };
      },
    }),
    defineRoute({
      method: 'PATCH',
      url: '/api/webhook-endpoints/:endpoint_id',
      operationId: 'updateWebhookEndpoint',
      tag: TAG,
      summary: 'Change an endpoint’s URL, events, description or enabled flag (admin only)',
      description: 'A disabled endpoint gets no new deliveries; ones already queued are still sent.',
      params: WebhookEndpointParams,
      body: UpdateWebhookEndpointBody,
      responses: { 200: { description: 'Changed', schema: WebhookEndpoint }, ...common, 404: error('No such endpoint') },
      handler: async ({ params, body, actor }) => {
        adminOnly(actor);
        return { status: 200, body: endpointJson(withId(await svc().update(params.endpoint_id, body, actorLabel(actor)))) };
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/api/webhook-endpoints/:endpoint_id',
      operationId: 'deleteWebhookEndpoint',
      tag: TAG,
      summary: 'Delete an endpoint and its deliveries (admin only)',
      params: WebhookEndpointParams,
      responses: { 200: { description: 'Deleted', schema: DeletedWebhookEndpoint }, ...common, 404: error('No such endpoint') },
      handler: async ({ params, actor }) => {
        adminOnly(actor);
        const e = withId(await svc().delete(params.endpoint_id, actorLabel(actor)));
        return { status: 200, body: { object: 'webhook_endpoint', id: e.id, deleted: true } };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/api/webhook-endpoints/:endpoint_id/rotate-secret',
      operationId: 'rotateWebhookEndpointSecret',
      tag: TAG,
      summary: 'Give an endpoint a new signing secret, shown once (admin only)',
      description: 'For `grace_seconds` (default 86400) deliveries carry two signatures, one per secret, so the receiver can switch without a gap.',
      params: WebhookEndpointParams,
      body: RotateWebhookSecretBody,
      responses: {
        200: { description: 'Rotated', schema: WebhookEndpointWithSecret },
        ...common,
        404: error('No such endpoint'),
        409: error('The vault is off (VAULT_MASTER_KEYS unset)'),
      },
      handler: async ({ params, body, actor }) => {
        adminOnly(actor);
        const rotated = await vaultCall(() => svc().rotateSecret(params.endpoint_id, body.grace_seconds ?? DEFAULT_GRACE_SECONDS, actorLabel(actor)));
        if (!rotated) throw notFound();
        return { status: 200, body: { ...endpointJson(rotated.endpoint), secret: rotated.secret } };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/webhook-deliveries',
      operationId: 'listWebhookDeliveries',
      tag: TAG,
      summary: 'Webhook deliveries, newest first, filtered and paged by cursor (admin only)',
      query: WebhookDeliveriesQuery,
      responses: { 200: { description: 'A page of deliveries', schema: WebhookDeliveryList }, ...common },
      handler: async ({ query, actor }) => {
        adminOnly(actor);
        const where: string[] = [];
        const values: unknown[] = [];
        const add = (sql: string, ...v: unknown[]) => {
          let s = sql;
          for (const x of v) {
            values.push(x);
            s = s.replace('?', `$${values.length}`);
          }
          where.push(s);
        };
        if (query.endpoint_id) add('endpoint_id = ?', query.endpoint_id);
        if (query.status) add('status = ?', query.status);
        if (query.event_type) add('event_type = ?', query.event_type);
        if (query.cursor) add('(created_at, id) < (?::timestamptz, ?)', ...decodeCursor(query.cursor));
        values.push(query.limit + 1);
        const r = await deps.pool.query<DeliveryRow>(
          `select ${DELIVERY_COLUMNS} from webhook_deliveries ${where.length ? `where ${where.join(' and ')}` : ''}
            order by created_at desc, id desc limit $${values.length}`,
          values,
        );
        const page = r.rows.slice(0, query.limit);
        return {
          status: 200,
          body: { object: 'list', data: page.map(deliveryJson), next_cursor: r.rows.length > query.limit ? encodeCursor(page[page.length - 1]!) : null },
        };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/webhook-deliveries/:delivery_id',
      operationId: 'getWebhookDelivery',
      tag: TAG,
      summary: 'One webhook delivery with its payload and last attempt (admin only)',
      params: WebhookDeliveryParams,
      responses: { 200: { description: 'The delivery', schema: WebhookDelivery }, ...common, 404: error('No such delivery') },
      handler: async ({ params, actor }) => {
        adminOnly(actor);
        const r = await deps.pool.query<DeliveryRow>(`select ${DELIVERY_COLUMNS} from webhook_deliveries where id = $1`, [params.delivery_id]);
        if (!r.rows[0]) throw notFound();
        return { status: 200, body: deliveryJson(r.rows[0]) };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/api/webhook-deliveries/:delivery_id/retry',
      operationId: 'retryWebhookDelivery',
      tag: TAG,
      summary: 'Send a delivery again now, with a fresh set of attempts (admin only)',
      description: 'Works on any delivery, a delivered one included (a replay); it keeps its webhook-id, so a receiver that already has it can tell.',
      params: WebhookDeliveryParams,
      responses: { 202: { description: 'Queued to be sent now', schema: WebhookDelivery }, ...common, 404: error('No such delivery') },
      handler: async ({ params, actor }) => {
        adminOnly(actor);
        const row = await inTransaction(deps.pool, async (db) => {
          const r = await db.query<DeliveryRow>(
            `update webhook_deliveries set status = 'pending', attempts = 0, next_attempt_at = now(), leased_until = null, delivered_at = null
              where id = $1 returning ${DELIVERY_COLUMNS}`,
            [params.delivery_id],
          );
          if (r.rows[0]) {
            await audit.record(
              {
                actor: actorLabel(actor),
                action: 'webhook_delivery.retried',
                keyId: null,
                userId: null,
                details: { delivery_id: r.rows[0].id, endpoint_id: r.rows[0].endpoint_id },
              },
              db,
            );
          }
          return r.rows[0];
        });
        if (!row) throw notFound();
        return { status: 202, body: deliveryJson(row) };
      },
    }),
  ];
}
