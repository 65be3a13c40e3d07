import Table from 'cli-table3';
import type { Command } from 'commander';
import type { Schemas } from '@tollgate/sdk';
import type { CommandContext } from './operator-commands.js';

type Plan = Schemas['PlanList']['data'][number];

const unset = (v: number | null) => (v === null ? '-' : String(v));

function plansTable(plans: Plan[]): string {
  if (plans.length === 0) return 'No plans (PLANS is not set).';
  const table = new Table({
    head: ['NAME', 'PER MINUTE', 'PER DAY', 'MONTHLY QUOTA', 'SCOPES', 'STRIPE PRICE', 'LOOKUP KEY'],
    style: { head: [], border: [] },
  });
  for (const p of plans) {
    table.push([
      p.name,
      unset(p.rate_limit_per_minute),
      unset(p.rate_limit_per_day),
      unset(p.monthly_quota),
      p.scopes ? p.scopes.join(' ') : '(any)',
      p.stripe_price ?? '-',
      p.stripe_lookup_key ?? '-',
    ]);
  }
  return table.toString();
}

/** `tollgate plans list`: the plans of PLANS, through GET /api/plans. */
export function registerPlansCommand(program: Command, { client, print }: CommandContext): void {
  program
    .command('plans')
    .description('plans an operator configured (PLANS): limits, scopes and Stripe prices')
    .command('list')
    .description('list the configured plans ("-": the plan sets no such limit, DEFAULT_RATE_LIMIT_* applies)')
    .action(async () => {
      const api = client();
      const r = await api.call(api.sdk.GET('/api/plans'));
      print(r, () => plansTable(r.data));
    });
}
