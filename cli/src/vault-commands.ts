import { Option, type Command } from 'commander';
import type { Schemas } from '@tollgate/sdk';
import { CliError, EXIT } from './exit-codes.js';
import { defined } from './args.js';
import type { CommandContext } from './operator-commands.js';
import { minute, table } from './output.js';

type ProviderKey = Schemas['ProviderKey'];

type OperatorCredential = Schemas['OperatorCredential'];

/** --secret-env / --secret: every command that takes a secret reads it the same way. */
function secretOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--secret-env <VAR>', 'read the secret from this environment variable (keeps it out of shell history)').conflicts('secret'))
    .option('--secret <value>', 'the secret itself (prefer --secret-env)');
}

/** The secret the options name; never printed, never sent anywhere but the API's request body. */
function secretOf(o: { secretEnv?: string; secret?: string }, env: NodeJS.ProcessEnv): string {
  const secret = o.secretEnv ? env[o.secretEnv] : o.secret;
  if (!secret) throw new CliError(EXIT.usage, o.secretEnv ? `$${o.secretEnv} is empty or unset` : 'give --secret-env <VAR> or --secret <value>');
  return secret;
}

function operatorTable(list: OperatorCredential[]): string {
  if (list.length === 0) return 'No operator credentials.';
  return table(
    ['ID', 'PROVIDER', 'LABEL', 'FINGERPRINT', 'MASTER KEY', 'UPDATED', 'ROTATION'],
    list.map((c) => [
      c.id,
      c.provider,
      c.label,
      c.fingerprint,
      c.master_key_id,
      minute(c.updated_at),
      c.rejected ? `out (${c.rejected.status} at ${minute(c.rejected.last_seen_at)})` : 'in',
    ]),
  );
}

/** Seeds 000/002's per-user vault and the managed phase's operator credentials (docs/vault.md). */
export function registerVaultCommands(program: Command, ctx: CommandContext): void {
  const vault = program.command('vault').description('provider credentials, per user and the operator’s own (write-only secrets)');
  secretOptions(
    vault
      .command('set')
      .description('store or replace a user’s credential for a provider')
      .argument('<user_id>')
      .argument('<provider>', 'e.g. daily, gemini (case-insensitive)'),
  ).action(async (userId: string, provider: string, o) => {
    const k = await ctx
      .client()
      .request<ProviderKey>('PUT', `/api/users/${encodeURIComponent(userId)}/provider-keys/${encodeURIComponent(provider)}`, { secret: secretOf(o, ctx.env) });
    ctx.print(k, () => `Stored ${k.provider} credential for ${k.user_id} (fingerprint ${k.fingerprint}).`);
  });
  vault
    .command('list')
    .description('list a user’s stored credentials (metadata only)')
    .argument('<user_id>')
    .action(async (userId: string) => {
      const r = await ctx.client().request<{ data: ProviderKey[] }>('GET', `/api/users/${encodeURIComponent(userId)}/provider-keys`);
      ctx.print(r, () =>
        r.data.length
          ? table(
              ['PROVIDER', 'FINGERPRINT', 'MASTER KEY', 'UPDATED'],
              r.data.map((k) => [k.provider, k.fingerprint, k.master_key_id, minute(k.updated_at)]),
            )
          : 'No provider credentials.',
      );
    });
  vault
    .command('delete')
    .description('delete a user’s credential for a provider')
    .argument('<user_id>')
    .argument('<provider>')
    .action(async (userId: string, provider: string) => {
      const r = await ctx
        .client()
        .request<{ provider: string }>('DELETE', `/api/users/${encodeURIComponent(userId)}/provider-keys/${encodeURIComponent(provider)}`);
      ctx.print(r, () => `Deleted ${r.provider} credential of ${userId}.`);
    });
  vault
    .command('rewrap')
    .description('move every sealed secret (users’ and operator’s credentials, webhook signing secrets) to the newest master key (admin token)')
    .action(async () => {
      const api = ctx.client();
      const r = await api.call(api.sdk.POST('/api/vault/rewrap'));
      const { provider_keys: users, operator_credentials: operator, webhook_secrets: webhooks } = r.by_table;
      ctx.print(
        r,
        () =>
          `Rewrapped ${r.rewrapped} secret(s) to ${r.master_key_id} (${users.rewrapped} users’, ${operator.rewrapped} operator, ${webhooks.rewrapped} webhook); ` +
          `${r.failed} could not be (see the service log).`,
      );
      if (r.failed > 0) throw new CliError(EXIT.apiError, `${r.failed} secret(s) could not be rewrapped`);
    });

  const operator = vault
    .command('operator')
    .description('the operator’s own provider credentials, used by keys granted the provider in metadata.managed_providers (admin token)');
  secretOptions(
    operator
      .command('add')
      .description('store a new operator credential for a provider (several per provider are used in turn)')
      .argument('<provider>', 'e.g. openai, daily (case-insensitive)')
      .requiredOption('--label <label>', 'what people call this account, e.g. "openai org 2"'),
  ).action(async (provider: string, o) => {
    const api = ctx.client();
    const c = await api.call(api.sdk.POST('/api/operator-credentials', { body: { provider, label: o.label, secret: secretOf(o, ctx.env) } }));
    ctx.print(c, () => `Stored operator credential ${c.id} for ${c.provider} ("${c.label}", fingerprint ${c.fingerprint}).`);
  });
  operator
    .command('list')
    .description('list the operator credentials (metadata only)')
    .option('--provider <provider>', 'only this provider’s')
    .action(async (o) => {
      const api = ctx.client();
      const r = await api.call(api.sdk.GET('/api/operator-credentials'));
      const wanted = o.provider?.toLowerCase();
      const shown = wanted ? { ...r, data: r.data.filter((c) => c.provider === wanted) } : r;
      ctx.print(shown, () => operatorTable(shown.data));
    });
  secretOptions(
    operator
      .command('rotate')
      .description('replace an operator credential’s secret (and optionally its label); used by every replica within a second')
      .argument('<id>', 'operator credential id (opc_…)')
      .option('--label <label>', 'a new label'),
  ).action(async (id: string, o) => {
    const api = ctx.client();
    const body = defined({ secret: secretOf(o, ctx.env), label: o.label }) as Schemas['RotateOperatorCredentialRequest'];
    const c = await api.call(api.sdk.PUT('/api/operator-credentials/{credential_id}', { params: { path: { credential_id: id } }, body }));
    ctx.print(c, () => `Rotated operator credential ${c.id} for ${c.provider} (fingerprint ${c.fingerprint}).`);
  });
  operator
    .command('delete')
    .description('delete an operator credential; keys granted its provider go on with the others')
    .argument('<id>', 'operator credential id (opc_…)')
    .action(async (id: string) => {
      const api = ctx.client();
      const r = await api.call(api.sdk.DELETE('/api/operator-credentials/{credential_id}', { params: { path: { credential_id: id } } }));
      ctx.print(r, () => `Deleted operator credential ${r.id} (${r.provider}).`);
    });
}
