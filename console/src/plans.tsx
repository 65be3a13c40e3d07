import { client, must } from './api.js';
import { ErrorNote, Field, Page, useLoad } from './ui.js';

export const loadPlans = () => must(client.GET('/api/plans')).then((p) => p.data);
export type Plan = Awaited<ReturnType<typeof loadPlans>>[number];

const limit = (v: number | null, unit: string) => (v === null ? <span class="muted">default</span> : `${v.toLocaleString()} ${unit}`);

export function Plans() {
  const plans = useLoad(loadPlans, []);
  return (
    <Page title="Plans">
      <p class="muted">
        From the PLANS setting. A key on a plan gets its limits and scopes where the key sets none of its own; Stripe subscriptions move keys between plans.
      </p>
      <ErrorNote error={plans.error} />
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Plan</th>
            <th scope="col">Per minute</th>
            <th scope="col">Per day</th>
            <th scope="col">Monthly quota</th>
            <th scope="col">Scopes</th>
            <th scope="col">Stripe price</th>
          </tr>
        </thead>
        <tbody>
          {(plans.data ?? []).map((p) => (
            <tr key={p.name}>
              <th scope="row">{p.name}</th>
              <td>{limit(p.rate_limit_per_minute, 'requests')}</td>
              <td>{limit(p.rate_limit_per_day, 'requests')}</td>
              <td>{p.monthly_quota === null ? <span class="muted">none</span> : `${p.monthly_quota.toLocaleString()} units`}</td>
              <td>{p.scopes ? p.scopes.join(' ') : <span class="muted">not limited</span>}</td>
              <td>
                <code>{p.stripe_price ?? `lookup key ${p.stripe_lookup_key ?? ''}`}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {plans.data && plans.data.length === 0 ? <p class="muted">No plans are configured (PLANS is empty).</p> : null}
    </Page>
  );
}

/** The plan choice on create and edit: operators pick; owners see their key's plan, read-only (the API refuses them). */
export function PlanField({ plans, value, onChange, owner }: { plans: Plan[] | undefined; value: string; onChange: (plan: string) => void; owner: boolean }) {
  if (!plans?.length && !value) return null;
  return (
    <Field label="Plan" hint={owner ? 'Operator only' : 'Where the key sets no limit of its own, the plan’s applies'}>
      <select value={value} disabled={owner} onChange={(e) => onChange(e.currentTarget.value)}>
        <option value="">no plan</option>
        {(plans ?? []).map((p) => (
          <option key={p.name} value={p.name}>
            {p.name}
          </option>
        ))}
        {value && !plans?.some((p) => p.name === value) ? <option value={value}>{value}</option> : null}
      </select>
    </Field>
  );
}
