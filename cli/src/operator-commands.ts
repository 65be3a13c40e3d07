import { Option, type Command } from 'commander';
import type { Schemas } from '@tollgate/sdk';
import type { UsageBySource, UsageTotals } from '@tollgate/usage-model';
import type { ApiClient } from './client.js';
import { CliError, EXIT } from './exit-codes.js';
import { collect, defined, integer } from './args.js';
import { minute, table } from './output.js';
import { registerVaultCommands } from './vault-commands.js';

/** What the key commands share with these: an API client and the table/JSON printer. */
export interface CommandContext {
  client: () => ApiClient;
  print: (value: unknown, human: () => string) => void;
  env: NodeJS.ProcessEnv;
}

/** A service token as the API returns it; `token` (the secret) only from create. */
type TokenRecord = Schemas['ServiceToken'] & { token?: string };

// The answer shapes of the usage routes are the read model's own (a type-only import: nothing of
// it runs in the CLI).
type Totals = UsageTotals;

const when = (iso: string | null) => minute(iso, 'never');

type WithSources = { by_source: UsageBySource[] };
type UsageSeries = Totals & WithSources & { from: string; to: string; buckets: (Totals & { start: string })[] };

const totalsRow = (t: Totals) => [
  t.total_requests,
  t.billable_requests,
  t.refused_requests,
  t.cost_units,
  t.billable_cost_units,
  t.request_bytes,
  t.response_bytes,
  t.avg_duration_ms,
];
const TOTALS_HEAD = ['REQUESTS', 'BILLABLE', 'REFUSED', 'COST', 'BILLABLE COST', 'BYTES IN', 'BYTES OUT', 'AVG MS'];

/** The totals by provider and credential source (`operator` is managed usage); nothing without requests. */
function sourcesTable(u: WithSources): string {
  if (u.by_source.length === 0) return '';
  return `\nBy provider and credential source:\n${table(
    ['PROVIDER', 'SOURCE', 'REQUESTS', 'BILLABLE', 'REFUSED', 'COST', 'BILLABLE COST'],
    u.by_source.map((s) => [
      s.provider ?? '-',
      s.credential_source ?? '-',
      s.total_requests,
      s.billable_requests,
      s.refused_requests,
      s.cost_units,
      s.billable_cost_units,
    ]),
  )}`;
}

/** One key's or one token's usage: a row per bucket and the total, then the breakdown by source. */
function seriesTable(title: string, u: UsageSeries): string {
  return `${title}, ${when(u.from)} to ${when(u.to)}\n${table(['BUCKET', ...TOTALS_HEAD], [...u.buckets.map((b) => [when(b.start), ...totalsRow(b)]), ['TOTAL', ...totalsRow(u)]])}${sourcesTable(u)}`;
}

/** --granularity, --from and --to: what the per-key and per-token usage commands share. */
function usageRangeOptions(cmd: Command, granularityHelp: string): Command {
  return cmd
    .addOption(new Option('--granularity <g>', granularityHelp).choices(['hour', 'day']).default('day'))
    .option('--from <time>', 'start (ISO 8601 or Unix seconds; default 30 days ago)')
    .option('--to <time>', 'end (default now)');
}

const rangeQuery = (o: { from?: string; to?: string }) => new URLSearchParams(defined({ from: o.from, to: o.to }) as Record<string, string>);

function tokensTable(list: TokenRecord[]): string {
  if (list.length === 0) return 'No service tokens.';
  return table(
    ['JTI', 'PROJECT', 'SERVICE', 'STATUS', 'ROUTES', 'EXPIRES', 'LAST USED', 'DESCRIPTION'],
    list.map((t) => [
      t.jti,
      t.project,
      t.service,
      t.status + (t.revoked_reason ? ` (${t.revoked_reason})` : ''),
      t.routes.join(' '),
      when(t.expires_at),
      when(t.last_used_at),
      t.description ?? '-',
    ]),
  );
}

/** Seed 001's token script, seeds 000/002's vault, and usage: the operator's other commands. */
export function registerOperatorCommands(program: Command, ctx: CommandContext): void {
  const tokens = program.command('tokens').description('issue, list and revoke service tokens (admin token only)');
  tokens
    .command('create')
    .description('issue a service token; prints it once')
    .requiredOption('--project <project>', 'project the token belongs to (e.g. captionacc)')
    .requiredOption('--service <service>', 'calling service (e.g. api, orchestrator)')
    .option('--description <text>', 'what the token is for')
    .option('--expires-in-days <n>', 'lifetime in days (1-3650)', integer(1, 3650), 90)
    .option('--route <prefix>', 'a path prefix it may call (repeat; default /<project>/)', collect)
    .action(async (o) => {
      const t = await ctx.client().request<TokenRecord>(
        'POST',
        '/api/tokens',
        defined({
          project: o.project,
          service: o.service,
          description: o.description,
          expires_in_days: o.expiresInDays,
          routes: o.route,
        }),
      );
      ctx.print(t, () => `${tokensTable([t])}\nToken (shown once; store it now, it cannot be read back):\n\n  ${t.token}\n`);
    });
  tokens
    .command('list')
    .description('list service tokens, newest first')
    .addOption(new Option('--active', 'only active tokens').conflicts('revoked'))
    .option('--revoked', 'only revoked tokens')
    .option('--project <project>', 'only this project’s')
    .action(async (o) => {
      const q = new URLSearchParams();
      if (o.active) q.set('active', 'true');
      if (o.revoked) q.set('active', 'false');
      if (o.project) q.set('project', o.project);
      const r = await ctx.client().request<{ data: TokenRecord[] }>('GET', `/api/tokens?${q}`);
      ctx.print(r, () => tokensTable(r.data));
    });
  tokens
    .command('unused')
    .description('active tokens not used for a while (candidates for revocation)')
    .option('--days <n>', 'not used for this many days', integer(0, 3650), 7)
    .action(async (o) => {
      const r = await ctx.client().request<{ data: TokenRecord[] }>('GET', `/api/tokens?active=true&unused_days=${o.days}`);
      ctx.print(r, () => tokensTable(r.data));
    });
  usageRangeOptions(
    tokens.command('usage').description('a token’s usage per bucket (what its requests cost; never sent to Stripe)').argument('<jti>', 'token id'),
    'buckets',
  ).action(async (jti: string, o) => {
    const q = rangeQuery(o);
    q.set('granularity', o.granularity);
    const u = await ctx
      .client()
      .request<UsageSeries & { jti: string; project: string | null; service: string | null }>('GET', `/api/tokens/${encodeURIComponent(jti)}/usage?${q}`);
    ctx.print(u, () => seriesTable(`${u.jti}${u.project ? ` (${u.project}/${u.service})` : ''}`, u));
  });
  tokens
    .command('revoke')
    .description('revoke a token; every gateway replica refuses it within a second')
    .argument('<jti>', 'token id')
    .option('--reason <text>', 'why (kept in the registry and the audit log)')
    .action(async (jti: string, o) => {
      const t = await ctx.client().request<TokenRecord>('POST', `/api/tokens/${encodeURIComponent(jti)}/revoke`, defined({ reason: o.reason }));
      ctx.print(t, () => `Revoked ${t.jti} (${t.project}/${t.service}).`);
    });

  registerVaultCommands(program, ctx);

  usageRangeOptions(
    program
      .command('usage')
      .description('usage per user (with a per-key breakdown) or per key, and Stripe delivery')
      .argument('[user_id]', 'whose usage')
      .option('--key <id>', 'one key’s usage instead, per bucket'),
    'buckets for --key',
  )
    .option('--billing', 'Stripe delivery: pending and parked meter events (admin token)')
    .action(async (userId: string | undefined, o) => {
      const api = ctx.client();
      const range = rangeQuery(o);
      if (o.billing) {
        const b = await api.request<{
          pending_events: number;
          oldest_pending_at: string | null;
          parked_events: { identifier: string; stripe_customer_id: string; value: number; status: number | null; error: string | null }[];
          meter_errors: { type: string; at: string; meter_id: string | null; summary: string | null }[];
        }>('GET', '/api/billing/status');
        ctx.print(
          b,
          () =>
            `Pending meter events: ${b.pending_events} (oldest ${when(b.oldest_pending_at)})\n` +
            (b.parked_events.length
              ? `Parked (Stripe refused; fix and requeue):\n${table(
                  ['IDENTIFIER', 'CUSTOMER', 'VALUE', 'STATUS', 'ERROR'],
                  b.parked_events.map((p) => [p.identifier, p.stripe_customer_id, p.value, p.status ?? '-', p.error ?? '-']),
                )}`
              : 'Parked: none') +
            (b.meter_errors.length
              ? `\nStripe meter alerts (newest first):\n${table(
                  ['AT', 'TYPE', 'METER', 'SUMMARY'],
                  b.meter_errors.map((m) => [when(m.at), m.type, m.meter_id ?? '-', m.summary ?? '-']),
                )}`
              : '\nStripe meter alerts: none'),
        );
        return;
      }
      if (o.key) {
        range.set('granularity', o.granularity);
        const u = await api.request<UsageSeries & { key_id: string }>('GET', `/api/keys/${encodeURIComponent(o.key)}/usage?${range}`);
        ctx.print(u, () => seriesTable(u.key_id, u));
        return;
      }
      if (!userId) throw new CliError(EXIT.usage, 'give a user id, --key <id>, or --billing');
      const u = await api.request<
        Totals & WithSources & { user_id: string; from: string; to: string; keys: (Totals & { key_id: string; credential: string })[] }
      >('GET', `/api/usage/${encodeURIComponent(userId)}?${range}`);
      ctx.print(
        u,
        () =>
          `${u.user_id}, ${when(u.from)} to ${when(u.to)}\n${table(['KEY', ...TOTALS_HEAD], [...u.keys.map((k) => [k.key_id, ...totalsRow(k)]), ['TOTAL', ...totalsRow(u)]])}${sourcesTable(u)}`,
      );
    });
}
