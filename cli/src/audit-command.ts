import Table from 'cli-table3';
import type { Command } from 'commander';
import type { Schemas } from '@tollgate/sdk';
import { integer } from './args.js';
import type { CommandContext } from './operator-commands.js';

type AuditEvent = Schemas['AuditEvent'];

function auditTable(events: AuditEvent[]): string {
  if (events.length === 0) return 'No audit events.';
  const table = new Table({ head: ['AT', 'ACTOR', 'ACTION', 'KEY', 'USER', 'DETAILS'], style: { head: [], border: [] } });
  for (const e of events) table.push([e.at, e.actor, e.action, e.key_id ?? '', e.user_id ?? '', JSON.stringify(e.details)]);
  return table.toString();
}

/** `tollgate audit`: the audit log, newest first, through GET /api/audit-events. */
export function registerAuditCommand(program: Command, { client, print }: CommandContext): void {
  program
    .command('audit')
    .description('list audit-log events, newest first (a keys:manage key sees its own keys’ events)')
    .option('--actor <actor>', 'admin, key:<id> or system')
    .option('--action <action>', 'e.g. key.revoked')
    .option('--key <key_id>', 'events about this key')
    .option('--since <iso>', 'at or after this RFC 3339 time')
    .option('--until <iso>', 'before this RFC 3339 time')
    .option('--limit <n>', 'events per page (1-200)', integer(1, 200), 50)
    .option('--cursor <cursor>', 'continue from a previous page')
    .option('--all', 'follow every page')
    .action(async (o) => {
      const api = client();
      const query = { actor: o.actor, action: o.action, key_id: o.key, since: o.since, until: o.until, limit: o.limit as number };
      const data: AuditEvent[] = [];
      let cursor: string | undefined = o.cursor;
      let next: string | null;
      do {
        const page = await api.call(api.sdk.GET('/api/audit-events', { params: { query: { ...query, ...(cursor ? { cursor } : {}) } } }));
        data.push(...page.data);
        next = page.next_cursor;
        cursor = next ?? undefined;
      } while (o.all && cursor);
      print({ data, next_cursor: next }, () => auditTable(data) + (next ? `\nMore: --cursor ${next} (or --all)` : ''));
    });
}
