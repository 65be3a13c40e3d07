// commander: the most used Node CLI parser, kept up to date, typed, with subcommands, help,
// and exitOverride() so usage errors get our documented exit code instead of its own.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { Schemas } from '@tollgate/sdk';
import { ApiClient } from './client.js';
import { CliError, EXIT, type ExitCode } from './exit-codes.js';
import { keyDetails, keysTable, secretNotice, type KeyRecord, type Output } from './output.js';
import { collect, defined, integer } from './args.js';
import { registerOperatorCommands } from './operator-commands.js';
import { registerAuditCommand } from './audit-command.js';
import { registerPlansCommand } from './plans-command.js';
import { registerWebhookCommands } from './webhook-commands.js';

export const DEFAULT_API_URL = 'http://127.0.0.1:8080';

interface GlobalOptions {
  apiUrl: string;
  token?: string;
  json?: boolean;
}

/**
 * A rate limit, or "none" to clear it (the server's default then applies). Kept as the word
 * until the request is built: commander replaces a parser's null with a default of its own.
 */
function limit(max: number) {
  const parse = integer(1, max);
  return (raw: string): number | 'none' => (raw === 'none' ? 'none' : parse(raw));
}
const orNull = (v: number | 'none' | undefined) => (v === 'none' ? null : v);

function jsonObject(raw: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new InvalidArgumentError('expected a JSON object, e.g. \'{"team":"data"}\'');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new InvalidArgumentError('expected a JSON object');
  return v as Record<string, unknown>;
}

function booleanWord(raw: string): boolean {
  if (raw === 'true' || raw === 'yes') return true;
  if (raw === 'false' || raw === 'no') return false;
  throw new InvalidArgumentError('expected true or false');
}

type CreateKeyRequest = Schemas['CreateKeyRequest'];
type UpdateKeyRequest = Schemas['UpdateKeyRequest'];
type ExtendKeyRequest = Schemas['ExtendKeyRequest'];
type KeyList = Schemas['KeyList'];

export interface RunEnvironment {
  env: NodeJS.ProcessEnv;
  output: Output;
}

/**
 * Runs one `tollgate` command line and returns the exit code (never calls process.exit, so it
 * can be tested in-process too).
 */
export async function run(argv: string[], { env, output }: RunEnvironment): Promise<ExitCode> {
  let json = false;
  const program = new Command('tollgate')
    .description('Operate Tollgate through the management API: API keys, service tokens, the provider-key vault, usage.')
    .version('0.1.0')
    .addOption(
      // The default comes from run()'s env, not commander's .env(), which reads process.env only.
      new Option('--api-url <url>', 'key-management API base URL ($TOLLGATE_API_URL sets the default)').default(env.TOLLGATE_API_URL ?? DEFAULT_API_URL),
    )
    .addOption(new Option('--token <token>', 'admin token or keys:manage key (default: $TOLLGATE_TOKEN, else $ADMIN_TOKEN)'))
    .option('--json', 'print the API’s JSON (for scripts) instead of tables')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: output.out, writeErr: output.err });

  const client = (): ApiClient => {
    const g = program.opts<GlobalOptions>();
    // ADMIN_TOKEN may list several (rotation); any one of them works, so take the first.
    const token = g.token ?? env.TOLLGATE_TOKEN ?? env.ADMIN_TOKEN?.split(',')[0]?.trim();
    if (!token) throw new CliError(EXIT.usage, 'no token: pass --token or set TOLLGATE_TOKEN (or ADMIN_TOKEN)');
    try {
      new URL(g.apiUrl);
    } catch {
      throw new CliError(EXIT.usage, `--api-url "${g.apiUrl}" is not a URL`);
    }
    return new ApiClient({ apiUrl: g.apiUrl, token });
  };
  const print = (value: unknown, human: () => string) => output.out(json ? JSON.stringify(value, null, 2) : human());
  const printKey = (k: KeyRecord) => print(k, () => keyDetails(k) + (k.key ? secretNotice(k.key) : ''));

  program.hook('preAction', () => {
    json = Boolean(program.opts<GlobalOptions>().json);
  });

  const keys = program.command('keys').description('create, list and control API keys');

  keys
    .command('create')
    .description('create a key; prints the plaintext key once')
    .requiredOption('--user <user_id>', 'owner of the key')
    .requiredOption('--name <name>', 'what the key is for')
    .option('--description <text>', 'longer description')
    .option('--rate-per-minute <n>', 'requests per minute (1-1000000)', integer(1, 1_000_000))
    .option('--rate-per-day <n>', 'requests per day (1-1000000000)', integer(1, 1_000_000_000))
    .option('--scope <scope>', 'a scope (repeat for more): read, write, read:/prefix/, keys:manage, *', collect)
    .option('--permission-set <name>', 'read_only, full_access or a configured set')
    .addOption(new Option('--expires-in-days <n>', 'expire after this many days').argParser(integer(1, 3650)).conflicts('expiresAt'))
    .option('--expires-at <iso>', 'expire at this RFC 3339 time')
    .option('--metadata <json>', 'JSON object kept with the key', jsonObject)
    .option('--stripe-customer <cus_id>', 'Stripe customer billed for this key')
    .option('--plan <name>', 'a configured plan (tollgate plans list); its limits apply where the key has none')
    .option('--idempotency-key <key>', 'makes a retry safe: the same key never creates twice')
    .action(async (o) => {
      const body = defined({
        user_id: o.user,
        name: o.name,
        description: o.description,
        rate_limit_per_minute: o.ratePerMinute,
        rate_limit_per_day: o.ratePerDay,
        scopes: o.scope,
        permission_set: o.permissionSet,
        expires_in_days: o.expiresInDays,
        expires_at: o.expiresAt,
        metadata: o.metadata,
        stripe_customer_id: o.stripeCustomer,
        plan: o.plan,
      });
      const api = client();
      const headers = o.idempotencyKey ? { 'Idempotency-Key': o.idempotencyKey } : {};
      printKey(await api.call(api.sdk.POST('/api/keys', { body: body as CreateKeyRequest, params: { header: headers } })));
    });

  keys
    .command('list')
    .description('list keys, newest first: one user’s, or everyone’s')
    .argument('[user_id]', 'only this user’s keys')
    .addOption(new Option('--active', 'only active keys').conflicts('inactive'))
    .option('--inactive', 'only revoked, suspended or expired keys')
    .option('--expiring-within-days <n>', 'only keys expiring within n days', integer(1, 3650))
    .option('--limit <n>', 'keys per page (1-100)', integer(1, 100), 50)
    .option('--cursor <cursor>', 'continue from a previous page')
    .option('--all', 'follow every page')
    .option('--search <text>', 'part of the name or user id, the start of the key prefix, or the key id (everyone’s keys)')
    .addOption(new Option('--status <status>', 'only keys in this state (everyone’s keys)').choices(['active', 'revoked', 'expiring', 'suspended']))
    .action(async (userId: string | undefined, o) => {
      const api = client();
      const query = defined({
        limit: o.limit as number,
        active: o.active ? ('true' as const) : o.inactive ? ('false' as const) : undefined,
        expiring_within_days: o.expiringWithinDays as number | undefined,
        q: o.search as string | undefined,
        status: o.status as 'active' | 'revoked' | 'expiring' | 'suspended' | undefined,
      });
      if (userId && (query.q || query.status))
        throw new CliError(EXIT.usage, '--search and --status work on everyone’s keys (GET /api/keys): leave out the user_id argument');
      let cursor: string | undefined = o.cursor;
      const data: KeyRecord[] = [];
      let page: KeyList;
      do {
        const q = { ...query, ...(cursor ? { cursor } : {}) };
        page = await api.call(
          userId ? api.sdk.GET('/api/keys/{user_id}', { params: { path: { user_id: userId }, query: q } }) : api.sdk.GET('/api/keys', { params: { query: q } }),
        );
        data.push(...page.data);
        cursor = page.next_cursor ?? undefined;
      } while (o.all && cursor);
      const result = { object: 'list', data, has_more: page.has_more, next_cursor: page.next_cursor };
      print(result, () => keysTable(data) + (page.has_more ? `\nMore: --cursor ${page.next_cursor} (or --all)` : ''));
    });

  keys
    .command('get')
    .description('show one key')
    .argument('<id>', 'key id (key_…)')
    .action(async (id: string) => {
      const api = client();
      printKey(await api.call(api.sdk.GET('/api/keys/by-id/{id}', { params: { path: { id } } })));
    });

  keys
    .command('update')
    .description('change a key’s name, description, limits, plan, scopes, metadata, Stripe customer or active flag')
    .argument('<id>', 'key id')
    .option('--name <name>')
    .option('--description <text>')
    .option('--rate-per-minute <n|none>', 'requests per minute, or none', limit(1_000_000))
    .option('--rate-per-day <n|none>', 'requests per day, or none', limit(1_000_000_000))
    .option('--scope <scope>', 'replaces the scopes (repeat for more)', collect)
    .option('--permission-set <name>')
    .option('--metadata <json>', 'replaces the metadata', jsonObject)
    .option('--stripe-customer <cus_id>')
    .option('--plan <name|none>', 'put the key on a configured plan, or none')
    .option('--active <true|false>', 'false suspends the key; true resumes it', booleanWord)
    .action(async (id: string, o) => {
      const body = defined({
        name: o.name,
        description: o.description,
        rate_limit_per_minute: orNull(o.ratePerMinute),
        rate_limit_per_day: orNull(o.ratePerDay),
        scopes: o.scope,
        permission_set: o.permissionSet,
        metadata: o.metadata,
        stripe_customer_id: o.stripeCustomer,
        plan: o.plan === 'none' ? null : o.plan,
        is_active: o.active,
      });
      if (Object.keys(body).length === 0) throw new CliError(EXIT.usage, 'nothing to update: give at least one option (see --help)');
      const api = client();
      printKey(await api.call(api.sdk.PATCH('/api/keys/{id}', { params: { path: { id } }, body: body as UpdateKeyRequest })));
    });

  keys
    .command('revoke')
    .description('revoke a key for good (the gateway refuses it within a second)')
    .argument('<id>', 'key id')
    .option('--reason <text>', 'why, for the audit log')
    .action(async (id: string, o) => {
      const api = client();
      printKey(await api.call(api.sdk.POST('/api/keys/{id}/revoke', { params: { path: { id } }, body: defined({ reason: o.reason as string | undefined }) })));
    });

  keys
    .command('rotate')
    .description('give a key a new secret; the old one works until the grace period ends')
    .argument('<id>', 'key id')
    .option('--grace-seconds <n>', 'how long the old secret keeps working (default: the server’s ROTATION_GRACE_SECONDS)', integer(0, 30 * 86_400))
    .option('--idempotency-key <key>', 'makes a retry safe: the same key never rotates twice')
    .action(async (id: string, o) => {
      const api = client();
      const headers = o.idempotencyKey ? { 'Idempotency-Key': o.idempotencyKey } : {};
      const body = defined({ grace_seconds: o.graceSeconds as number | undefined });
      printKey(await api.call(api.sdk.POST('/api/keys/{id}/rotate', { params: { path: { id }, header: headers }, body })));
    });

  keys
    .command('extend')
    .description('set or extend a key’s expiry')
    .argument('<id>', 'key id')
    .option('--days <n>', 'add n days to the current expiry (or to now)', integer(1, 3650))
    .option('--expires-at <iso>', 'expire at this RFC 3339 time')
    .option('--never', 'remove the expiry')
    .action(async (id: string, o) => {
      const given = [o.days !== undefined, o.expiresAt !== undefined, Boolean(o.never)].filter(Boolean).length;
      if (given !== 1) throw new CliError(EXIT.usage, 'give exactly one of --days, --expires-at or --never');
      const body = o.never ? { expires_at: null } : defined({ days: o.days, expires_at: o.expiresAt });
      const api = client();
      printKey(await api.call(api.sdk.POST('/api/keys/{id}/extend', { params: { path: { id } }, body: body as ExtendKeyRequest })));
    });

  keys
    .command('delete')
    .description('delete a key (its audit history stays)')
    .argument('<id>', 'key id')
    .action(async (id: string) => {
      const api = client();
      const result = await api.call(api.sdk.DELETE('/api/keys/{id}', { params: { path: { id } } }));
      print(result, () => `Deleted ${result.id}.`);
    });

  registerOperatorCommands(program, { client, print, env });
  registerAuditCommand(program, { client, print, env });
  registerPlansCommand(program, { client, print, env });
  registerWebhookCommands(program, { client, print, env });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end with a CommanderError too, with exit code 0.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof CliError) {
      // With --json, stderr is JSON too: the API's error body, or one in the same shape.
      if (json) output.err(JSON.stringify(err.body ?? { error: err.exitCode === EXIT.unreachable ? 'unreachable' : 'usage', message: err.message }));
      else output.err(`tollgate: ${err.message}`);
      return err.exitCode;
    }
    output.err(`tollgate: unexpected error: ${(err as Error).message}`);
    return EXIT.apiError;
  }
}
