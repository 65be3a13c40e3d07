import { readBillingStatus, readKeysUsage, readOutcomeSeries, readTrafficOverview } from '@tollgate/usage-model';
import type { ServiceDeps } from '../deps.js';
import { assertMayActFor, ownsKey } from './auth.js';
import { notFound } from './errors.js';
import { defineRoute, type RouteResponse, type RouteSpec } from './routes.js';
import { ErrorResponse, KeyIdParams, UserIdParams } from './schemas/common.js';
import { KeysUsage, KeysUsageQuery, OutcomeSeries, OverviewRecord, SeriesQuery } from './schemas/outcomes.js';
import { requireAdmin } from './token-routes.js';
import { usageCall } from './usage-routes.js';
import { USAGE_RANGE_RULE } from './schemas/usage.js';

const error = (description: string): RouteResponse => ({ description, schema: ErrorResponse });
const common = {
  400: error('Bad range (from/to) or parameters'),
  401: error('Missing or invalid credential'),
  403: error('The key lacks keys:manage'),
  503: error('Usage tables are missing: billing-sidecar has not run against this database'),
};
const TAG = 'usage';

type TopKey = Awaited<ReturnType<typeof readTrafficOverview>>['top_keys'][number];

/**
 * Names the overview's top keys (the roll-ups hold ids only): one query for the keys and one for
 * the service tokens among at most ten entries (none when there are none), so an operator reads "billing-worker", not an id.
 */
async function withNames(deps: ServiceDeps, top: TopKey[]): Promise<(TopKey & { name: string | null })[]> {
  const ids = (credential: string) => top.filter((k) => k.credential === credential).map((k) => k.id);
  const named = async (sql: string, list: string[]) => (list.length ? (await deps.pool.query<{ id: string; name: string }>(sql, [list])).rows : []);
  const [keys, tokens] = await Promise.all([
    named('select id, name from api_keys where id = any($1::text[])', ids('api_key')),
    named("select jti as id, project || '/' || service as name from gateway_tokens where jti = any($1::text[])", ids('service_token')),
  ]);
  const names: Record<string, Map<string, string>> = {
    api_key: new Map(keys.map((r) => [r.id, r.name])),
    service_token: new Map(tokens.map((r) => [r.id, r.name])),
  };
  return top.map((k) => ({ ...k, name: names[k.credential]?.get(k.id) ?? null }));
}

/** The console's charts: usage by outcome class per bucket, a page of keys at once, and the operator overview. */
export function consoleUsageRoutes(deps: ServiceDeps): RouteSpec[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/api/usage/:user_id/series',
      operationId: 'getUserUsageSeries',
      tag: TAG,
      summary: 'A user’s requests by outcome class, per hour or day',
      description: USAGE_RANGE_RULE,
      params: UserIdParams,
      query: SeriesQuery,
      responses: { 200: { description: 'Series', schema: OutcomeSeries }, ...common, 403: error('The key lacks keys:manage, or reads another user’s usage') },
      handler: async ({ params, query, actor }) => {
        assertMayActFor(actor, params.user_id);
        return { status: 200, body: await usageCall(() => readOutcomeSeries(deps.pool, { userId: params.user_id }, query)) };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/keys/:id/usage/series',
      operationId: 'getKeyUsageSeries',
      tag: TAG,
      summary: 'One key’s requests by outcome class, per hour or day',
      description: USAGE_RANGE_RULE,
      params: KeyIdParams,
      query: SeriesQuery,
      responses: { 200: { description: 'Series', schema: OutcomeSeries }, ...common, 404: error('No such key (or another user’s)') },
      handler: async ({ params, query, actor }) => {
        const key = await deps.keyStore.getById(params.id);
        if (!key || !ownsKey(actor, key.userId)) throw notFound();
        return { status: 200, body: await usageCall(() => readOutcomeSeries(deps.pool, { keyId: params.id }, query)) };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/keys/usage',
      operationId: 'getKeysUsage',
      tag: TAG,
      summary: 'Usage totals, by outcome and per day, for a page of keys in one call',
      description: ['Read from the daily roll-ups: the range is widened to whole UTC days. Every id must be a key the caller may see.', USAGE_RANGE_RULE].join(
        ' ',
      ),
      query: KeysUsageQuery,
      responses: { 200: { description: 'Per key', schema: KeysUsage }, ...common, 404: error('One of the ids is no key (or another user’s)') },
      handler: async ({ query, actor }) => {
        const ids = [...new Set(query.ids.split(','))];
        const owners = await deps.pool.query<{ id: string; user_id: string }>('select id, user_id from api_keys where id = any($1::text[])', [ids]);
        const visible = new Set(owners.rows.filter((k) => ownsKey(actor, k.user_id)).map((k) => k.id));
        const hidden = ids.find((id) => !visible.has(id));
        if (hidden) throw notFound(`key ${hidden}`);
        return { status: 200, body: await usageCall(() => readKeysUsage(deps.pool, ids, query)) };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/overview',
      operationId: 'getOverview',
      tag: TAG,
      summary: 'Operator overview: all traffic by outcome, top keys and users, denials, billing delivery (admin only)',
      description: USAGE_RANGE_RULE,
      query: SeriesQuery,
      responses: { 200: { description: 'Overview', schema: OverviewRecord }, ...common, 403: error('Admin only') },
      handler: async ({ query, actor }) => {
        requireAdmin(actor);
        const body = await usageCall(async () => {
          const traffic = await readTrafficOverview(deps.pool, query);
          return {
            series: await readOutcomeSeries(deps.pool, { all: true }, query),
            ...traffic,
            top_keys: await withNames(deps, traffic.top_keys),
            billing: await readBillingStatus(deps.pool),
          };
        });
        return { status: 200, body };
      },
    }),
  ];
}
