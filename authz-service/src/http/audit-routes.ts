import type { ServiceDeps } from '../deps.js';
import { defineRoute, type RouteSpec } from './routes.js';
import { ErrorResponse } from './schemas/common.js';
import { AuditEventList, AuditEventsQuery } from './schemas/audit.js';

interface Row {
  id: string;
  at: Date;
  actor: string;
  action: string;
  key_id: string | null;
  user_id: string | null;
  details: Record<string, unknown>;
}

/** The audit log for the console: filters, and id-keyset pages newest first (ids only grow, so a page never shifts). */
export function auditRoutes(deps: ServiceDeps): RouteSpec[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/api/audit-events',
      operationId: 'listAuditEvents',
      tag: 'audit',
      summary: 'Audit-log events, newest first, filtered and paged by cursor',
      description: 'A keys:manage key sees only events about its own user’s keys.',
      query: AuditEventsQuery,
      responses: {
        200: { description: 'A page of events', schema: AuditEventList },
        400: { description: 'Bad filter or cursor', schema: ErrorResponse },
        401: { description: 'Missing or invalid credential', schema: ErrorResponse },
        403: { description: 'The key lacks keys:manage', schema: ErrorResponse },
      },
      handler: async ({ query, actor }) => {
        const where: string[] = [];
        const values: unknown[] = [];
        const add = (sql: string, value: unknown) => {
          values.push(value);
          where.push(sql.replace('?', `$${values.length}`));
        };
        if (actor.kind === 'key') {
          add('user_id = ?', actor.userId);
          where.push('key_id is not null');
        }
        if (query.actor) add('actor = ?', query.actor);
        if (query.action) add('action = ?', query.action);
        if (query.key_id) add('key_id = ?', query.key_id);
        // As instants in UTC: Postgres refuses offsets past ±15:59, which ISO 8601 (and the schema) allow.
        if (query.since) add('at >= ?', new Date(query.since).toISOString());
        if (query.until) add('at < ?', new Date(query.until).toISOString());
        if (query.cursor) add('id < ?', query.cursor);
        values.push(query.limit + 1);
        const r = await deps.pool.query<Row>(
          `select id::text as id, at, actor, action, key_id, user_id, details from audit_log
           ${where.length ? `where ${where.join(' and ')}` : ''} order by id desc limit $${values.length}`,
          values,
        );
        const page = r.rows.slice(0, query.limit);
        return {
          status: 200,
          body: {
            data: page.map((e) => ({ ...e, at: e.at.toISOString() })),
            next_cursor: r.rows.length > query.limit ? page[page.length - 1]!.id : null,
          },
        };
      },
    }),
  ];
}
