import { useState } from 'preact/hooks';
import { auditEvents, type AuditEvent, type AuditQuery, client, lastHours, listKeys, must, overview, type Session, userSeries } from './api.js';
import { OutcomeChart } from './chart.js';
import { href } from './router.js';
import { Badge, ErrorNote, Field, OnceSecret, Page, useLoad, when } from './ui.js';

export function OverviewScreen() {
  const [hours, setHours] = useState(24);
  const data = useLoad(() => overview(lastHours(hours)), [hours]);
  const billing = useLoad(() => must(client.GET('/api/billing/status')), []);
  const o = data.data;
  return (
    <Page title="Overview">
      <Field label="Range">
        <select value={hours} onChange={(e) => setHours(Number(e.currentTarget.value))}>
          <option value={24}>Last 24 hours</option>
          <option value={168}>Last 7 days</option>
          <option value={720}>Last 30 days</option>
        </select>
      </Field>
      {data.error ? <p class="muted">The overview route is not available on this server: {(data.error as Error).message}</p> : null}
      {o?.series ? <OutcomeChart points={o.series.points} title="Requests by outcome" /> : null}
      <div class="cards">
        <div class="card">
          <h2>Top keys</h2>
          <ol>
            {(o?.top_keys ?? []).map((k) => (
              <li key={k.id}>
                {k.credential === 'service_token' ? (
                  <a href={href('tokens')}>{k.name ?? k.id}</a>
                ) : (
                  <a href={href('keys', k.id)}>{k.name ?? k.id}</a>
                )}{' '}
                ({k.credential === 'service_token' ? 'service token' : (k.user_id ?? '—')}) — {k.requests}
              </li>
            ))}
          </ol>
        </div>
        <div class="card">
          <h2>Top users</h2>
          <ol>
            {(o?.top_users ?? []).map((u) => (
              <li key={u.id}>
                <a href={href('users', u.id)}>{u.id}</a> — {u.requests}
              </li>
            ))}
          </ol>
        </div>
        <div class="card">
          <h2>Denials by reason</h2>
          <ul>
            {(o?.denials ?? []).map((d) => (
              <li key={d.error_code}>
                <code>{d.error_code}</code> — {d.requests}
              </li>
            ))}
          </ul>
        </div>
        <div class="card">
          <h2>Billing delivery</h2>
          <ErrorNote error={billing.error} />
          {billing.data ? (
            <p>
              {billing.data.pending_events} pending, {billing.data.parked_events.length} parked; oldest pending {when(billing.data.oldest_pending_at)}
            </p>
          ) : null}
        </div>
      </div>
    </Page>
  );
}

export function Users() {
  const keys = useLoad(() => listKeys({}).then((l) => l.data), []);
  const users = new Map<string, number>();
  for (const k of keys.data ?? []) users.set(k.user_id, (users.get(k.user_id) ?? 0) + 1);
  return (
    <Page title="Users">
      <ErrorNote error={keys.error} />
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">User</th>
            <th scope="col">Keys</th>
          </tr>
        </thead>
        <tbody>
          {[...users].map(([user, count]) => (
            <tr key={user}>
              <td>
                <a href={href('users', user)}>{user}</a>
              </td>
              <td>{count}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>
  );
}

export function UserDetail({ userId, session }: { userId: string; session: Session }) {
  const usage = useLoad(() => must(client.GET('/api/usage/{user_id}', { params: { path: { user_id: userId } } })), [userId]);
  const series = useLoad(() => userSeries(userId, lastHours(24 * 7)), [userId]);
  return (
    <Page title={session.kind === 'owner' ? 'My usage' : `User ${userId}`}>
      <ErrorNote error={usage.error} />
      {series.data ? <OutcomeChart points={series.data.points} title="Requests by outcome, last 7 days" /> : null}
      {usage.data ? (
        <>
          <p>
            {usage.data.total_requests} requests ({usage.data.billable_requests} billable, {usage.data.refused_requests} refused) from {when(usage.data.from)} to{' '}
            {when(usage.data.to)}
          </p>
          <table class="grid">
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col">Requests</th>
                <th scope="col">Last request</th>
              </tr>
            </thead>
            <tbody>
              {usage.data.keys.map((k) => (
                <tr key={k.key_id}>
                  <td>
                    <a href={href('keys', k.key_id)}>{k.key_id}</a>
                  </td>
                  <td>{k.total_requests}</td>
                  <td>{when(k.last_request_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
      <p>
        <a href={href('provider-keys', userId)}>Provider keys of {userId}</a>
      </p>
    </Page>
  );
}

export function ServiceTokens() {
  const tokens = useLoad(() => must(client.GET('/api/tokens')), []);
  const [form, setForm] = useState({ project: '', service: '', description: '', expires_in_days: '90', routes: '' });
  const [issued, setIssued] = useState<string | null>(null);
  const [unusedDays, setUnusedDays] = useState('');
  const [error, setError] = useState<unknown>();
  const cutoff = unusedDays ? Date.now() - Number(unusedDays) * 86_400_000 : null;
  const rows = (tokens.data?.data ?? []).filter((t) => cutoff === null || !t.last_used_at || Date.parse(t.last_used_at) < cutoff);
  return (
    <Page title="Service tokens">
      {issued ? <OnceSecret label="The new service token." secret={issued} /> : null}
      <form
        class="form card"
        aria-labelledby="issue-h"
        onSubmit={async (e) => {
          e.preventDefault();
          setError(undefined);
          try {
            const routes = form.routes.split(/[\s,]+/).filter(Boolean);
            const t = await must(
              client.POST('/api/tokens', {
                body: { project: form.project, service: form.service, description: form.description || null, expires_in_days: Number(form.expires_in_days), routes },
              }),
            );
            setIssued(t.token);
            tokens.reload();
          } catch (err) {
            setError(err);
          }
        }}
      >
        <h2 id="issue-h">Issue a token</h2>
        <Field label="Project">
          <input required value={form.project} onInput={(e) => setForm({ ...form, project: e.currentTarget.value })} />
        </Field>
        <Field label="Service">
          <input required value={form.service} onInput={(e) => setForm({ ...form, service: e.currentTarget.value })} />
        </Field>
        <Field label="Description">
          <input value={form.description} onInput={(e) => setForm({ ...form, description: e.currentTarget.value })} />
        </Field>
        <Field label="Expires in days">
          <input type="number" min="1" required value={form.expires_in_days} onInput={(e) => setForm({ ...form, expires_in_days: e.currentTarget.value })} />
        </Field>
        <Field label="Routes" hint="Path prefixes, separated by spaces">
          <input value={form.routes} onInput={(e) => setForm({ ...form, routes: e.currentTarget.value })} />
        </Field>
        <ErrorNote error={error} />
        <button type="submit">Issue token</button>
      </form>
      <Field label="Unused for at least N days">
        <input type="number" min="1" value={unusedDays} onInput={(e) => setUnusedDays(e.currentTarget.value)} />
      </Field>
      <ErrorNote error={tokens.error} />
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Project / service</th>
            <th scope="col">Status</th>
            <th scope="col">Last used</th>
            <th scope="col">Expires</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((t) => (
            <tr key={t.jti}>
              <td>
                {t.project} / {t.service}
              </td>
              <td>
                <Badge status={t.status} />
              </td>
              <td>{when(t.last_used_at)}</td>
              <td>{when(t.expires_at)}</td>
              <td>
                <button
                  type="button"
                  class="danger secondary"
                  disabled={t.status !== 'active'}
                  onClick={async () => {
                    const reason = prompt(`Why revoke ${t.project}/${t.service}?`) ?? '';
                    try {
                      await must(client.POST('/api/tokens/{jti}/revoke', { params: { path: { jti: t.jti } }, body: reason ? { reason } : {} }));
                      tokens.reload();
                    } catch (err) {
                      setError(err);
                    }
                  }}
                >
                  Revoke
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>
  );
}

export function ProviderKeys({ userId, session }: { userId: string; session: Session }) {
  const [user, setUser] = useState(userId);
  const list = useLoad(
    () => (user ? must(client.GET('/api/users/{user_id}/provider-keys', { params: { path: { user_id: user } } })) : Promise.resolve(null)),
    [user],
  );
  const [provider, setProvider] = useState('');
  const [secret, setSecret] = useState('');
  const [error, setError] = useState<unknown>();
  return (
    <Page title="Provider keys">
      <Field label="User ID" hint={session.kind === 'owner' ? 'Set by your session' : undefined}>
        <input value={user} disabled={session.kind === 'owner'} onChange={(e) => setUser(e.currentTarget.value)} />
      </Field>
      <ErrorNote error={list.error ?? error} />
      <p class="muted">Provider secrets are write-only: only a fingerprint and dates are ever shown.</p>
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Provider</th>
            <th scope="col">Fingerprint</th>
            <th scope="col">Set</th>
            <th scope="col">Updated</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {(list.data?.data ?? []).map((p) => (
            <tr key={p.provider}>
              <td>{p.provider}</td>
              <td>
                <code>{p.fingerprint}</code>
              </td>
              <td>{when(p.created_at)}</td>
              <td>{when(p.updated_at)}</td>
              <td>
                <button
                  type="button"
                  class="danger secondary"
                  onClick={async () => {
                    if (!confirm(`Delete the ${p.provider} key of ${user}?`)) return;
                    try {
                      await must(client.DELETE('/api/users/{user_id}/provider-keys/{provider}', { params: { path: { user_id: user, provider: p.provider } } }));
                      list.reload();
                    } catch (err) {
                      setError(err);
                    }
                  }}
                >
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        class="form card"
        aria-labelledby="pk-h"
        onSubmit={async (e) => {
          e.preventDefault();
          setError(undefined);
          try {
            await must(client.PUT('/api/users/{user_id}/provider-keys/{provider}', { params: { path: { user_id: user, provider } }, body: { secret } }));
            setSecret('');
            list.reload();
          } catch (err) {
            setError(err);
          }
        }}
      >
        <h2 id="pk-h">Set or replace a provider key</h2>
        <Field label="Provider">
          <input required value={provider} onInput={(e) => setProvider(e.currentTarget.value)} />
        </Field>
        <Field label="Secret">
          <input required type="password" autocomplete="off" value={secret} onInput={(e) => setSecret(e.currentTarget.value)} />
        </Field>
        <button type="submit" disabled={!user}>
          Save provider key
        </button>
      </form>
    </Page>
  );
}

const csvCell = (v: unknown) => {
  const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

function toCsv(rows: AuditEvent[]): string {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r) as (keyof AuditEvent)[]))];
  return [columns.join(','), ...rows.map((r) => columns.map((c) => csvCell(r[c])).join(','))].join('\n');
}

export function AuditLog() {
  const [query, setQuery] = useState<AuditQuery>({ limit: 100 });
  const [draft, setDraft] = useState({ actor: '', action: '', key_id: '', since: '', until: '' });
  const events = useLoad(() => auditEvents(query), [JSON.stringify(query)]);
  return (
    <Page title="Audit log">
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          const q: AuditQuery = { limit: 100 };
          if (draft.actor) q.actor = draft.actor;
          if (draft.action) q.action = draft.action;
          if (draft.key_id) q.key_id = draft.key_id;
          if (draft.since) q.since = new Date(draft.since).toISOString();
          if (draft.until) q.until = new Date(draft.until).toISOString();
          setQuery(q);
        }}
      >
        {(['actor', 'action', 'key_id'] as const).map((f) => (
          <Field key={f} label={f === 'key_id' ? 'Key ID' : f[0]!.toUpperCase() + f.slice(1)}>
            <input value={draft[f]} onInput={(e) => setDraft({ ...draft, [f]: e.currentTarget.value })} />
          </Field>
        ))}
        <Field label="Since">
          <input type="datetime-local" value={draft.since} onInput={(e) => setDraft({ ...draft, since: e.currentTarget.value })} />
        </Field>
        <Field label="Until">
          <input type="datetime-local" value={draft.until} onInput={(e) => setDraft({ ...draft, until: e.currentTarget.value })} />
        </Field>
        <button type="submit">Filter</button>
        <button
          type="button"
          class="secondary"
          disabled={!events.data}
          onClick={() => {
            const url = URL.createObjectURL(new Blob([toCsv(events.data!.data)], { type: 'text/csv' }));
            const a = document.createElement('a');
            a.href = url;
            a.download = 'tollgate-audit.csv';
            a.click();
            URL.revokeObjectURL(url);
          }}
        >
          Export CSV
        </button>
      </form>
      <ErrorNote error={events.error} />
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Actor</th>
            <th scope="col">Action</th>
            <th scope="col">Key</th>
          </tr>
        </thead>
        <tbody>
          {(events.data?.data ?? []).map((ev) => (
            <tr key={ev.id}>
              <td>{when(ev.at)}</td>
              <td>{ev.actor}</td>
              <td>{ev.action}</td>
              <td>{ev.key_id ? <a href={href('keys', ev.key_id)}>{ev.key_id}</a> : '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>
  );
}

export function Billing() {
  const status = useLoad(() => must(client.GET('/api/billing/status')), []);
  const s = status.data;
  const totals = new Map<string, number>();
  for (const e of s?.parked_events ?? []) totals.set(e.stripe_customer_id, (totals.get(e.stripe_customer_id) ?? 0) + e.value);
  return (
    <Page title="Billing">
      <ErrorNote error={status.error} />
      {s ? (
        <>
          <p data-testid="billing-summary">
            Stripe outbox: {s.pending_events} pending (oldest {when(s.oldest_pending_at)}), {s.parked_events.length} parked.
          </p>
          <h2>Parked meter events</h2>
          <table class="grid">
            <thead>
              <tr>
                <th scope="col">Customer</th>
                <th scope="col">Window</th>
                <th scope="col">Value</th>
                <th scope="col">Stripe status</th>
                <th scope="col">Stripe's error</th>
              </tr>
            </thead>
            <tbody>
              {s.parked_events.map((e) => (
                <tr key={e.identifier}>
                  <td>{e.stripe_customer_id}</td>
                  <td>{when(e.window_start)}</td>
                  <td>{e.value}</td>
                  <td>{e.status ?? '—'}</td>
                  <td>{e.error ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>Parked totals per customer</h2>
          <ul>
            {[...totals].map(([customer, value]) => (
              <li key={customer}>
                {customer}: {value}
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </Page>
  );
}
