import { useState } from 'preact/hooks';
import { ApiError, auditEvents, client, type Key, type KeyUsageSummary, keysUsage, lastHours, listKeys, must, type Session } from './api.js';
import { OutcomeChart } from './chart.js';
import { loadPlans, PlanField } from './plans.js';
import { go, href } from './router.js';
import { Badge, ErrorNote, Field, GRACES, OnceSecret, Page, Sparkline, useAction, useLoad, when } from './ui.js';
import { keyOutcomes } from './usage.js';

const STATUS_FILTERS = ['', 'active', 'revoked', 'expiring', 'suspended'] as const;
type StatusFilter = (typeof STATUS_FILTERS)[number];

/** Owner sessions see their own keys only: the API scopes them, and the list asks for that user alone. */
async function loadKeys(session: Session, q: string, status: StatusFilter) {
  try {
    return (await listKeys({ ...(q ? { q } : {}), ...(status ? { status } : {}), ...(session.kind === 'owner' ? { user_id: session.user_id! } : {}) })).data;
  } catch (err) {
    // A server without key search answers 400 to q/status: list, then filter here.
    if (!(err instanceof ApiError) || err.status !== 400) throw err;
    const all = (await listKeys(session.kind === 'owner' ? { user_id: session.user_id! } : {})).data;
    return all.filter((k) => matches(k, q, status));
  }
}

function matches(k: Key, q: string, status: StatusFilter): boolean {
  const needle = q.toLowerCase();
  if (needle && ![k.name, k.key_prefix, k.user_id].some((v) => v.toLowerCase().includes(needle))) return false;
  if (status === 'active') return k.status === 'active';
  if (status === 'revoked') return k.status === 'revoked';
  if (status === 'suspended') return k.status === 'inactive';
  if (status === 'expiring') return !!k.expires_at && Date.parse(k.expires_at) - Date.now() < 7 * 86_400_000 && k.status === 'active';
  return true;
}

export function KeysList({ session }: { session: Session }) {
  const [q, setQ] = useState('');
  const [status, setStatus] = useState<StatusFilter>('');
  const keys = useLoad(() => loadKeys(session, q, status), [q, status]);
  const ids = (keys.data ?? []).map((k) => k.id);
  const range = lastHours(24 * 14);
  // One call for the whole page, never one per row.
  const usage = useLoad(() => (ids.length ? keysUsage(ids, range.from, range.to).then((u) => u.data) : Promise.resolve({} as Record<string, KeyUsageSummary>)), [ids.join(',')]);
  return (
    <Page
      title="Keys"
      actions={
        <a class="button" href={href('keys', 'new')}>
          Create key
        </a>
      }
    >
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <Field label="Search name, prefix or user">
          <input type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </Field>
        <Field label="Status">
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value as StatusFilter)}>
            {STATUS_FILTERS.map((s) => (
              <option key={s} value={s}>
                {s || 'all'}
              </option>
            ))}
          </select>
        </Field>
      </form>
      <ErrorNote error={keys.error} />
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Prefix</th>
            <th scope="col">User</th>
            <th scope="col">Status</th>
            <th scope="col">Plan</th>
            <th scope="col">Last used</th>
            <th scope="col">14 days</th>
          </tr>
        </thead>
        <tbody>
          {(keys.data ?? []).map((k) => (
            <tr key={k.id}>
              <td>
                <a href={href('keys', k.id)}>{k.name}</a>
              </td>
              <td>
                <code>{k.key_prefix}</code>
              </td>
              <td>{k.user_id}</td>
              <td>
                <Badge status={k.status} />
              </td>
              <td>{k.plan ?? <span class="muted">—</span>}</td>
              <td>{when(usage.data?.[k.id]?.last_used_at ?? k.last_used_at)}</td>
              <td>
                {usage.data?.[k.id] ? (
                  <Sparkline values={usage.data[k.id]!.daily} label={`${usage.data[k.id]!.requests} requests in 14 days`} />
                ) : (
                  <span class="muted">{k.usage_count} total</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {keys.data && keys.data.length === 0 ? <p class="muted">No keys match.</p> : null}
    </Page>
  );
}

const num = (v: string) => (v.trim() === '' ? null : Number(v));

export function CreateKey({ session }: { session: Session }) {
  const owner = session.kind === 'owner';
  const [form, setForm] = useState({
    user_id: owner ? session.user_id! : '',
    name: '',
    description: '',
    rate_limit_per_minute: '',
    rate_limit_per_day: '',
    scopes: '',
    permission_set: '',
    expires_in_days: '',
    metadata: '{}',
    stripe_customer_id: '',
    plan: '',
  });
  const [created, setCreated] = useState<{ id: string; key: string } | null>(null);
  const [error, setError] = useState<unknown>();
  const sets = useLoad(() => must(client.GET('/api/permission-sets')), []);
  const plans = useLoad(loadPlans, []);
  const set = (field: keyof typeof form) => (e: { currentTarget: { value: string } }) => setForm({ ...form, [field]: e.currentTarget.value });
  async function submit(e: Event) {
    e.preventDefault();
    setError(undefined);
    try {
      const body = {
        user_id: form.user_id,
        name: form.name,
        description: form.description || null,
        rate_limit_per_minute: num(form.rate_limit_per_minute),
        rate_limit_per_day: num(form.rate_limit_per_day),
        scopes: form.scopes
          .split(/[\s,]+/)
          .map((s) => s.trim())
          .filter(Boolean),
        ...(form.permission_set ? { permission_set: form.permission_set } : {}),
        ...(form.expires_in_days ? { expires_in_days: Number(form.expires_in_days) } : {}),
        metadata: JSON.parse(form.metadata || '{}') as Record<string, unknown>,
        ...(owner ? {} : { stripe_customer_id: form.stripe_customer_id || null, ...(form.plan ? { plan: form.plan } : {}) }),
      };
      const key = await must(client.POST('/api/keys', { body }));
      setCreated({ id: key.id, key: key.key ?? '' });
    } catch (err) {
      setError(err instanceof SyntaxError ? new Error('Metadata must be a JSON object') : err);
    }
  }
  if (created) {
    return (
      <Page title="Key created">
        <OnceSecret label="Your new API key." secret={created.key} />
        <p>
          <a href={href('keys', created.id)}>Go to the key</a>
        </p>
      </Page>
    );
  }
  return (
    <Page title="Create key">
      <form class="form" onSubmit={submit}>
        <Field label="User ID" hint={owner ? 'Set by your session' : 'The owner, as your system names it'}>
          <input required value={form.user_id} onInput={set('user_id')} disabled={owner} />
        </Field>
        <Field label="Name">
          <input required value={form.name} onInput={set('name')} />
        </Field>
        <Field label="Description">
          <input value={form.description} onInput={set('description')} />
        </Field>
        <Field label="Requests per minute" hint="Empty: the default">
          <input type="number" min="1" value={form.rate_limit_per_minute} onInput={set('rate_limit_per_minute')} />
        </Field>
        <Field label="Requests per day" hint="Empty: the default">
          <input type="number" min="1" value={form.rate_limit_per_day} onInput={set('rate_limit_per_day')} />
        </Field>
        <Field label="Scopes" hint="Separated by spaces or commas">
          <input value={form.scopes} onInput={set('scopes')} />
        </Field>
        <Field label="Permission set">
          <select value={form.permission_set} onChange={set('permission_set')}>
            <option value="">default{sets.data ? ` (${sets.data.default})` : ''}</option>
            {(sets.data?.data ?? []).map((s) => (
              <option key={s.name} value={s.name}>
                {s.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Expires in days" hint="Empty: never">
          <input type="number" min="1" value={form.expires_in_days} onInput={set('expires_in_days')} />
        </Field>
        <Field label="Metadata (JSON)">
          <textarea rows={3} value={form.metadata} onInput={set('metadata')} />
        </Field>
        <Field label="Stripe customer ID" hint={owner ? 'Operator only' : 'Billing: usage of this key is metered to this customer'}>
          <input value={form.stripe_customer_id} onInput={set('stripe_customer_id')} disabled={owner} />
        </Field>
        <PlanField plans={plans.data} value={form.plan} owner={owner} onChange={(plan) => setForm({ ...form, plan })} />
        <ErrorNote error={error} />
        <button type="submit">Create key</button>
      </form>
    </Page>
  );
}

const RANGES = [
  { label: 'Last hour', hours: 1 },
  { label: 'Last 24 hours', hours: 24 },
  { label: 'Last 7 days', hours: 24 * 7 },
  { label: 'Last 30 days', hours: 24 * 30 },
];

export function KeyDetail({ id, session }: { id: string; session: Session }) {
  const owner = session.kind === 'owner';
  const key = useLoad(() => must(client.GET('/api/keys/by-id/{id}', { params: { path: { id } } })), [id]);
  const [hours, setHours] = useState(24);
  const { act, error, setError, notice, tick, refresh } = useAction(() => key.reload());
  const chart = useLoad(() => keyOutcomes(id, lastHours(hours)), [id, hours, tick]);
  const audit = useLoad(() => auditEvents({ key_id: id, limit: 20 }), [id, tick]);
  const [secret, setSecret] = useState<string | null>(null);
  const [grace, setGrace] = useState('3600');
  const [reason, setReason] = useState('');
  const [days, setDays] = useState('30');
  const [edit, setEdit] = useState<{ name: string; description: string; rpm: string; rpd: string; plan: string } | null>(null);
  const plans = useLoad(loadPlans, []);
  const k = key.data;
  if (key.error) return <ErrorNote error={key.error} />;
  if (!k) return <p aria-busy="true">Loading…</p>;
  const form = edit ?? { name: k.name, description: k.description ?? '', rpm: String(k.rate_limit_per_minute ?? ''), rpd: String(k.rate_limit_per_day ?? ''), plan: k.plan ?? '' };
  return (
    <Page title={`Key ${k.name}`}>
      <dl class="facts">
        <dt>Status</dt>
        <dd>
          <Badge status={k.status} />
        </dd>
        <dt>Prefix</dt>
        <dd>
          <code>{k.key_prefix}</code>
        </dd>
        <dt>User</dt>
        <dd>{k.user_id}</dd>
        <dt>Scopes</dt>
        <dd>{k.effective_scopes.join(' ') || '—'}</dd>
        <dt>Expires</dt>
        <dd>{when(k.expires_at)}</dd>
        <dt>Last used</dt>
        <dd>{when(k.last_used_at)}</dd>
        <dt>Plan</dt>
        <dd>{k.plan ?? '—'}</dd>
        <dt>Previous secret valid until</dt>
        <dd>{when(k.previous_key_expires_at)}</dd>
        {k.revoked_reason ? (
          <>
            <dt>Revoked because</dt>
            <dd>{k.revoked_reason}</dd>
          </>
        ) : null}
      </dl>
      {secret ? <OnceSecret label="The new secret of this key." secret={secret} /> : null}
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      <ErrorNote error={error} />
      <section aria-labelledby="usage-h">
        <h2 id="usage-h">Usage</h2>
        <Field label="Range">
          <select value={hours} onChange={(e) => setHours(Number(e.currentTarget.value))}>
            {RANGES.map((r) => (
              <option key={r.hours} value={r.hours}>
                {r.label}
              </option>
            ))}
          </select>
        </Field>
        <button type="button" class="secondary" onClick={refresh}>
          Refresh
        </button>
        <ErrorNote error={chart.error} />
        {chart.data ? <OutcomeChart points={chart.data} title="Requests by outcome" /> : null}
      </section>
      <div class="cards">
        <form
          class="card"
          aria-labelledby="edit-h"
          onSubmit={(e) => {
            e.preventDefault();
            void act('Saved', () =>
              must(
                client.PATCH('/api/keys/{id}', {
                  params: { path: { id } },
                  body: {
                    name: form.name,
                    description: form.description || null,
                    // Owners may not set limits or plans: send only what they may change.
                    ...(owner ? {} : { rate_limit_per_minute: num(form.rpm), rate_limit_per_day: num(form.rpd), plan: form.plan || null }),
                  },
                }),
              ).then(() => setEdit(null)),
            );
          }}
        >
          <h2 id="edit-h">Edit</h2>
          <Field label="Name">
            <input value={form.name} onInput={(e) => setEdit({ ...form, name: e.currentTarget.value })} />
          </Field>
          <Field label="Description">
            <input value={form.description} onInput={(e) => setEdit({ ...form, description: e.currentTarget.value })} />
          </Field>
          <Field label="Requests per minute" hint={owner ? 'Operator only' : undefined}>
            <input type="number" disabled={owner} value={form.rpm} onInput={(e) => setEdit({ ...form, rpm: e.currentTarget.value })} />
          </Field>
          <Field label="Requests per day" hint={owner ? 'Operator only' : undefined}>
            <input type="number" disabled={owner} value={form.rpd} onInput={(e) => setEdit({ ...form, rpd: e.currentTarget.value })} />
          </Field>
          <PlanField plans={plans.data} value={form.plan} owner={owner} onChange={(plan) => setEdit({ ...form, plan })} />
          <button type="submit">Save</button>
        </form>
        <form
          class="card"
          aria-labelledby="rotate-h"
          onSubmit={(e) => {
            e.preventDefault();
            void act('Rotated', async () => {
              const rotated = await must(client.POST('/api/keys/{id}/rotate', { params: { path: { id } }, body: { grace_seconds: Number(grace) } }));
              setSecret(rotated.key ?? null);
            });
          }}
        >
          <h2 id="rotate-h">Rotate</h2>
          <Field label="Old secret keeps working for">
            <select value={grace} onChange={(e) => setGrace(e.currentTarget.value)}>
              {GRACES.map((g) => (
                <option key={g.seconds} value={g.seconds}>
                  {g.label}
                </option>
              ))}
            </select>
          </Field>
          <button type="submit" disabled={k.status === 'revoked'}>
            Rotate key
          </button>
        </form>
        <form
          class="card"
          aria-labelledby="extend-h"
          onSubmit={(e) => {
            e.preventDefault();
            void act('Extended', () => must(client.POST('/api/keys/{id}/extend', { params: { path: { id } }, body: { days: Number(days) } })));
          }}
        >
          <h2 id="extend-h">Extend</h2>
          <Field label="Days to add">
            <input type="number" min="1" value={days} onInput={(e) => setDays(e.currentTarget.value)} />
          </Field>
          <button type="submit">Extend</button>
        </form>
        <form
          class="card danger"
          aria-labelledby="revoke-h"
          onSubmit={(e) => {
            e.preventDefault();
            void act('Revoked', () => must(client.POST('/api/keys/{id}/revoke', { params: { path: { id } }, body: reason ? { reason } : {} })));
          }}
        >
          <h2 id="revoke-h">Revoke</h2>
          <Field label="Reason">
            <input value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
          </Field>
          <button type="submit" class="danger" disabled={k.status === 'revoked'}>
            Revoke key
          </button>
          <button
            type="button"
            class="danger secondary"
            onClick={() => {
              if (!confirm(`Delete key ${k.name} for good? Its usage history stays.`)) return;
              void act('Deleted', () => must(client.DELETE('/api/keys/{id}', { params: { path: { id } } })).then(() => go('keys')));
            }}
          >
            Delete key
          </button>
        </form>
      </div>
      <section aria-labelledby="audit-h">
        <h2 id="audit-h">Audit history</h2>
        {audit.error ? <p class="muted">Audit history is not available: {String((audit.error as Error).message)}</p> : null}
        <ul class="audit">
          {(audit.data?.data ?? []).map((ev) => (
            <li key={ev.id}>
              <time>{when(ev.at)}</time> <strong>{ev.action}</strong> by {ev.actor}
            </li>
          ))}
        </ul>
      </section>
    </Page>
  );
}
