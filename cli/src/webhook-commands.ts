import { InvalidArgumentError, Option, type Command } from 'commander';
import Table from 'cli-table3';
import { WEBHOOK_EVENT_TYPES, type Schemas } from '@tollgate/sdk';
import { integer } from './args.js';
import type { CommandContext } from './operator-commands.js';

type Endpoint = Schemas['WebhookEndpoint'];
type Delivery = Schemas['WebhookDelivery'];

/** A repeatable option limited to the event types (commander's choices() does not combine with collecting). */
function eventTypes(value: string, previous: string[] | undefined): string[] {
  if (!(WEBHOOK_EVENT_TYPES as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${WEBHOOK_EVENT_TYPES.join(', ')}`);
  return [...(previous ?? []), value];
}

const grid = (head: string[], rows: (string | number)[][]) => {
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const r of rows) t.push(r);
  return t.toString();
};

function endpointsTable(list: Endpoint[]): string {
  if (list.length === 0) return 'No webhook endpoints.';
  return grid(
    ['ID', 'URL', 'EVENTS', 'ENABLED', 'DESCRIPTION'],
    list.map((e) => [e.id, e.url, e.events.join(' '), e.enabled ? 'yes' : 'no', e.description ?? '-']),
  );
}

function deliveriesTable(list: Delivery[]): string {
  if (list.length === 0) return 'No webhook deliveries.';
  return grid(
    ['ID', 'EVENT', 'ENDPOINT', 'STATUS', 'ATTEMPTS', 'LAST', 'CREATED'],
    list.map((d) => [d.id, d.event_type, d.endpoint_id, d.status, d.attempts, d.last_error ?? (d.last_status ? String(d.last_status) : '-'), d.created_at]),
  );
}

/** The secret is printed once, on its own line, the way key creation prints a key. */
const withSecret = (e: Endpoint & { secret: string }) => `${endpointsTable([e])}\n\nSigning secret (shown once; verify deliveries with it):\n${e.secret}`;

/** `tollgate webhooks …`: outbound webhook endpoints and their delivery log (admin token). */
export function registerWebhookCommands(program: Command, { client, print }: CommandContext): void {
  const hooks = program.command('webhooks').description('outbound webhook endpoints and deliveries (admin token; docs/webhooks.md)');

  hooks
    .command('create')
    .description('register an endpoint; prints its signing secret once')
    .requiredOption('--url <url>', 'where deliveries are POSTed (http or https)')
    .addOption(new Option('--event <type>', 'an event type to receive (repeat for several)').argParser(eventTypes).makeOptionMandatory())
    .option('--description <text>', 'what the endpoint is for')
    .option('--disabled', 'register it disabled')
    .action(async (o) => {
      const api = client();
      const body = {
        url: o.url as string,
        events: o.event as Endpoint['events'],
        ...(o.description ? { description: o.description as string } : {}),
        enabled: !o.disabled,
      };
      const e = await api.call(api.sdk.POST('/api/webhook-endpoints', { body }));
      print(e, () => withSecret(e));
    });

  hooks
    .command('list')
    .description('list endpoints (never their secrets)')
    .action(async () => {
      const api = client();
      const list = await api.call(api.sdk.GET('/api/webhook-endpoints'));
      print(list, () => endpointsTable(list.data));
    });

  hooks
    .command('delete <endpoint_id>')
    .description('delete an endpoint and its delivery log')
    .action(async (id: string) => {
      const api = client();
      const gone = await api.call(api.sdk.DELETE('/api/webhook-endpoints/{endpoint_id}', { params: { path: { endpoint_id: id } } }));
      print(gone, () => `Deleted webhook endpoint ${gone.id}.`);
    });

  hooks
    .command('rotate-secret <endpoint_id>')
    .description('a new signing secret, printed once; the old one keeps signing for the grace period')
    .option('--grace <seconds>', 'how long the old secret signs too (0-604800)', integer(0, 7 * 86_400), 86_400)
    .action(async (id: string, o) => {
      const api = client();
      const e = await api.call(
        api.sdk.POST('/api/webhook-endpoints/{endpoint_id}/rotate-secret', {
          params: { path: { endpoint_id: id } },
          body: { grace_seconds: o.grace as number },
        }),
      );
      print(e, () => withSecret(e));
    });

  hooks
    .command('deliveries')
    .description('the delivery log, newest first')
    .option('--endpoint <endpoint_id>', 'deliveries to this endpoint')
    .addOption(new Option('--status <status>', 'only these').choices(['pending', 'delivered', 'failed']))
    .addOption(new Option('--event <type>', 'only this event type').choices(WEBHOOK_EVENT_TYPES))
    .option('--limit <n>', 'deliveries per page (1-200)', integer(1, 200), 50)
    .option('--cursor <cursor>', 'continue from a previous page')
    .action(async (o) => {
      const api = client();
      const query = {
        limit: o.limit as number,
        ...(o.endpoint ? { endpoint_id: o.endpoint as string } : {}),
        ...(o.status ? { status: o.status as Delivery['status'] } : {}),
        ...(o.event ? { event_type: o.event as Delivery['event_type'] } : {}),
        ...(o.cursor ? { cursor: o.cursor as string } : {}),
      };
      const page = await api.call(api.sdk.GET('/api/webhook-deliveries', { params: { query } }));
      print(page, () => deliveriesTable(page.data) + (page.next_cursor ? `\nMore: --cursor ${page.next_cursor}` : ''));
    });

  hooks
    .command('retry <delivery_id>')
    .description('send a delivery again now, with a fresh set of attempts')
    .action(async (id: string) => {
      const api = client();
      const d = await api.call(api.sdk.POST('/api/webhook-deliveries/{delivery_id}/retry', { params: { path: { delivery_id: id } } }));
      print(d, () => `Queued ${d.id} (${d.event_type}) to be sent again now.`);
    });
}
