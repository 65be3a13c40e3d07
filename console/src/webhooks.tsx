import type { Schemas } from '@tollgate/sdk';
import { useState } from 'preact/hooks';
import { client, must } from './api.js';
import { go, href } from './router.js';
import { Badge, ErrorNote, Field, GRACES, OnceSecret, Page, useAction, useLoad, when } from './ui.js';

type Endpoint = Schemas['WebhookEndpoint'];
type Delivery = Schemas['WebhookDelivery'];
type EventType = Endpoint['events'][number];

// Listed so the compiler checks it against the SDK's type: a new event type in the API fails tsc here.
const EVENT_TYPES = {
  'key.created': 'A key is created',
  'key.revoked': 'A key is revoked',
  'key.rotated': 'A key’s secret is rotated',
  'key.expiring': 'A key expires soon',
  'token.expiring': 'A service token expires soon',
  'quota.threshold': 'A key crosses a quota threshold',
  'billing.suspended': 'Billing suspends a customer’s keys',
  'billing.resumed': 'Billing resumes them',
  'invoice.payment_failed': 'Stripe reports a failed payment',
} satisfies Record<EventType, string>;


const DELIVERY_STATUSES = ['', 'pending', 'delivered', 'failed'] as const;
// The API's largest page: enough to count the parked deliveries per endpoint on the list.
const PAGE = 100;

const listDeliveries = (query: { endpoint_id?: string; status?: Delivery['status']; cursor?: string }) =>
  must(client.GET('/api/webhook-deliveries', { params: { query: { ...query, limit: PAGE } } }));

/** "parked" is what the screens call a delivery the API marks failed: it waits for a retry. */
const statusLabel = (s: Delivery['status']) => (s === 'failed' ? 'parked' : s);

export function WebhookEndpoints() {
  const endpoints = useLoad(() => must(client.GET('/api/webhook-endpoints')), []);
  const parked = useLoad(() => listDeliveries({ status: 'failed' }), []);
  const failures = new Map<string, number>();
  for (const d of parked.data?.data ?? []) failures.set(d.endpoint_id, (failures.get(d.endpoint_id) ?? 0) + 1);
  return (
    <Page
      title="Webhooks"
      actions={
        <a class="button" href={href('webhooks', 'new')}>
          Add endpoint
        </a>
      }
    >
      <p class="muted">
        Signed event deliveries to your URLs. <a href={href('deliveries')}>All deliveries</a>
      </p>
      <ErrorNote error={endpoints.error} />
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">URL</th>
            <th scope="col">Events</th>
            <th scope="col">Status</th>
            <th scope="col">Parked deliveries</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {(endpoints.data?.data ?? []).map((ep) => (
            <tr key={ep.id}>
              <td>
                <a href={href('webhooks', ep.id)}>{ep.url}</a>
                {ep.description ? <div class="muted">{ep.description}</div> : null}
              </td>
              <td>{ep.events.join(', ')}</td>
              <td>
                <Badge status={ep.enabled ? 'enabled' : 'disabled'} />
              </td>
              <td>{parked.data ? (failures.get(ep.id) ?? 0) : '—'}</td>
              <td>{when(ep.created_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {endpoints.data && endpoints.data.data.length === 0 ? <p class="muted">No webhook endpoints yet.</p> : null}
    </Page>
  );
}

export function CreateWebhook() {
  const [url, setUrl] = useState('');
  const [description, setDescription] = useState('');
  const [events, setEvents] = useState<EventType[]>(['key.created']);
  const [created, setCreated] = useState<{ id: string; secret: string } | null>(null);
  const [error, setError] = useState<unknown>();
  if (created) {
    return (
      <Page title="Endpoint added">
        <OnceSecret label="The signing secret of this endpoint." secret={created.secret} />
        <p>Receivers verify each delivery’s webhook-signature header with it (docs/webhooks.md).</p>
        <p>
          <a href={href('webhooks', created.id)}>Go to the endpoint</a>
        </p>
      </Page>
    );
  }
  return (
    <Page title="Add webhook endpoint">
      <form
        class="form"
        onSubmit={async (e) => {
          e.preventDefault();
          setError(undefined);
          try {
            const ep = await must(client.POST('/api/webhook-endpoints', { body: { url, events, description: description || null } }));
            setCreated({ id: ep.id, secret: ep.secret });
          } catch (err) {
            setError(err);
          }
        }}
      >
        <Field label="URL" hint="http(s); the service refuses private addresses unless WEBHOOK_ALLOW_PRIVATE_TARGETS is on">
          <input type="url" required value={url} onInput={(e) => setUrl(e.currentTarget.value)} />
        </Field>
        <Field label="Description">
          <input value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
        </Field>
        <fieldset class="events">
          <legend>Events</legend>
          {(Object.keys(EVENT_TYPES) as EventType[]).map((type) => (
            <label key={type}>
              <input
                type="checkbox"
                checked={events.includes(type)}
                onChange={(e) => setEvents(e.currentTarget.checked ? [...events, type] : events.filter((t) => t !== type))}
              />{' '}
              <code>{type}</code> <span class="muted">{EVENT_TYPES[type]}</span>
            </label>
          ))}
        </fieldset>
        <ErrorNote error={error} />
        <button type="submit" disabled={events.length === 0}>
          Add endpoint
        </button>
      </form>
    </Page>
  );
}

export function WebhookDetail({ id }: { id: string }) {
  const endpoint = useLoad(() => must(client.GET('/api/webhook-endpoints/{endpoint_id}', { params: { path: { endpoint_id: id } } })), [id]);
  const [secret, setSecret] = useState<string | null>(null);
  const [grace, setGrace] = useState('86400');
  const { act, error, setError, notice, tick } = useAction(() => endpoint.reload());
  const ep = endpoint.data;
  if (endpoint.error) return <ErrorNote error={endpoint.error} />;
  if (!ep) return <p aria-busy="true">Loading…</p>;
  return (
    <Page title={`Endpoint ${ep.url}`}>
      <dl class="facts">
        <dt>Status</dt>
        <dd>
          <Badge status={ep.enabled ? 'enabled' : 'disabled'} />
        </dd>
        <dt>Events</dt>
        <dd>{ep.events.join(', ')}</dd>
        <dt>Description</dt>
        <dd>{ep.description ?? '—'}</dd>
        <dt>Created</dt>
        <dd>{when(ep.created_at)}</dd>
        <dt>Secret rotated</dt>
        <dd>{when(ep.secret_rotated_at)}</dd>
        <dt>Previous secret signs until</dt>
        <dd>{when(ep.previous_secret_expires_at)}</dd>
      </dl>
      {secret ? <OnceSecret label="The new signing secret of this endpoint." secret={secret} /> : null}
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      <ErrorNote error={error} />
      <div class="cards">
        <div class="card">
          <h2>Deliveries</h2>
          <p>{ep.enabled ? 'New events are delivered to this URL.' : 'Disabled: new events are not queued for this URL.'}</p>
          <button
            type="button"
            onClick={() =>
              void act(ep.enabled ? 'Disabled' : 'Enabled', () =>
                must(client.PATCH('/api/webhook-endpoints/{endpoint_id}', { params: { path: { endpoint_id: id } }, body: { enabled: !ep.enabled } })),
              )
            }
          >
            {ep.enabled ? 'Disable endpoint' : 'Enable endpoint'}
          </button>
        </div>
        <form
          class="card"
          aria-labelledby="rotate-h"
          onSubmit={(e) => {
            e.preventDefault();
            void act('Secret rotated', async () => {
              const rotated = await must(
                client.POST('/api/webhook-endpoints/{endpoint_id}/rotate-secret', { params: { path: { endpoint_id: id } }, body: { grace_seconds: Number(grace) } }),
              );
              setSecret(rotated.secret);
            });
          }}
        >
          <h2 id="rotate-h">Rotate secret</h2>
          <Field label="Old secret keeps signing for">
            <select value={grace} onChange={(e) => setGrace(e.currentTarget.value)}>
              {GRACES.map((g) => (
                <option key={g.seconds} value={g.seconds}>
                  {g.label}
                </option>
              ))}
            </select>
          </Field>
          <button type="submit">Rotate secret</button>
        </form>
        <div class="card danger">
          <h2>Delete</h2>
          <p>Stops all deliveries to this URL.</p>
          <button
            type="button"
            class="danger"
            onClick={() => {
              if (!confirm(`Delete the endpoint ${ep.url}? Its delivery log goes with it.`)) return;
              // Not act(): it would reload the endpoint just deleted.
              must(client.DELETE('/api/webhook-endpoints/{endpoint_id}', { params: { path: { endpoint_id: id } } })).then(() => go('webhooks'), setError);
            }}
          >
            Delete endpoint
          </button>
        </div>
      </div>
      <DeliveryTable endpointId={id} tick={tick} />
    </Page>
  );
}

export function WebhookDeliveries() {
  return (
    <Page title="Webhook deliveries">
      <DeliveryTable />
    </Page>
  );
}

function DeliveryTable({ endpointId, tick = 0 }: { endpointId?: string; tick?: number }) {
  const [status, setStatus] = useState<(typeof DELIVERY_STATUSES)[number]>('');
  // The all-deliveries view names each endpoint by its URL.
  const endpoints = useLoad(() => (endpointId ? Promise.resolve(null) : must(client.GET('/api/webhook-endpoints'))), [endpointId]);
  const urls = new Map((endpoints.data?.data ?? []).map((ep) => [ep.id, ep.url]));
  const deliveries = useLoad(() => listDeliveries({ ...(endpointId ? { endpoint_id: endpointId } : {}), ...(status ? { status } : {}) }), [endpointId, status, tick]);
  const { act, error, notice } = useAction(() => deliveries.reload());
  const retry = (d: Delivery) =>
    act(`Delivery ${d.id} queued again`, () => must(client.POST('/api/webhook-deliveries/{delivery_id}/retry', { params: { path: { delivery_id: d.id } } })));
  return (
    <section aria-labelledby="deliveries-h">
      <h2 id="deliveries-h">{endpointId ? 'Recent deliveries' : 'Newest first'}</h2>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <Field label="Delivery status">
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value as typeof status)}>
            {DELIVERY_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s ? statusLabel(s) : 'all'}
              </option>
            ))}
          </select>
        </Field>
        <button type="button" class="secondary" onClick={() => deliveries.reload()}>
          Refresh
        </button>
      </form>
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      <ErrorNote error={error ?? deliveries.error} />
      <table class="grid" data-testid="deliveries">
        <thead>
          <tr>
            <th scope="col">Event</th>
            {endpointId ? null : <th scope="col">Endpoint</th>}
            <th scope="col">Status</th>
            <th scope="col">Attempts</th>
            <th scope="col">Last error</th>
            <th scope="col">Next attempt</th>
            <th scope="col">Created</th>
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {(deliveries.data?.data ?? []).map((d) => (
            <tr key={d.id}>
              <td>
                <code>{d.event_type}</code>
              </td>
              {endpointId ? null : (
                <td>
                  <a href={href('webhooks', d.endpoint_id)}>{urls.get(d.endpoint_id) ?? d.endpoint_id}</a>
                </td>
              )}
              <td>
                <Badge status={statusLabel(d.status)} />
              </td>
              <td>{d.attempts}</td>
              <td>{d.last_error ?? (d.last_status && d.status !== 'delivered' ? `HTTP ${d.last_status}` : '—')}</td>
              <td class="nowrap">{when(d.next_attempt_at)}</td>
              <td class="nowrap">{when(d.created_at)}</td>
              <td>
                {d.status === 'failed' ? (
                  <button type="button" class="secondary" onClick={() => void retry(d)}>
                    Retry
                  </button>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {deliveries.data && deliveries.data.data.length === 0 ? <p class="muted">No deliveries.</p> : null}
    </section>
  );
}
