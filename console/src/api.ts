import { createTollgateClient, type operations, type Schemas, type TollgateClient } from '@tollgate/sdk';

// The API's shapes are the generated SDK's: the console restates none of them.
export type Key = Schemas['Key'];
/** What POST/GET /api/session answers. The csrf_token lives only in this module's memory. */
export type Session = Schemas['Session'];
export type OutcomePoint = Schemas['OutcomeSeries']['points'][number];
export type KeyUsageSummary = Schemas['KeysUsage']['data'][string];
export type AuditEvent = Schemas['AuditEvent'];
type QueryOf<Op extends keyof operations> = NonNullable<operations[Op]['parameters']['query']>;
export type AuditQuery = QueryOf<'listAuditEvents'>;
type KeyQuery = QueryOf<'listKeys'>;

let csrf: string | null = null;
// Only while the server has no /api/session (404): the token, in this module's memory, as a bearer.
let bearer: string | null = null;

/** Same origin: the session cookie goes with every call; state-changing calls carry X-CSRF-Token. */
export const client: TollgateClient = createTollgateClient({ baseUrl: '', csrfToken: () => csrf });
client.use({
  onRequest({ request }) {
    if (bearer) request.headers.set('authorization', `Bearer ${bearer}`);
    return request;
  },
});

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The data, or an ApiError carrying the API's {error, message}. */
export async function must<T>(call: Promise<Answer<T>>): Promise<T> {
  const { data, error, response } = await call;
  if (error !== undefined || !response.ok) {
    const body = (error ?? {}) as { error?: string; message?: string };
    throw new ApiError(response.status, body.error ?? 'error', body.message ?? `${response.status} ${response.statusText}`);
  }
  return data as T;
}

export async function signIn(token: string): Promise<Session> {
  try {
    const session = await must(client.POST('/api/session', { body: { token } }));
    csrf = session.csrf_token;
    return session;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
  }
  // No session route on this server: check the token against a read, and keep it in memory only.
  bearer = token;
  const { response } = await client.GET('/api/permission-sets');
  if (!response.ok) {
    bearer = null;
    throw new ApiError(401, 'unauthorized', 'That token was not accepted');
  }
  const admin = (await client.GET('/api/billing/status')).response.ok;
  return { kind: admin ? 'admin' : 'owner', user_id: null, scopes: [], expires_at: '', idle_expires_at: '', csrf_token: '' };
}

/** The session the cookie carries, after a reload; null when signed out. */
export async function currentSession(): Promise<Session | null> {
  const { data, response } = await client.GET('/api/session');
  if (!response.ok || !data) return null;
  csrf = data.csrf_token;
  return data;
}

export async function signOut(): Promise<void> {
  if (!bearer) await client.DELETE('/api/session');
  csrf = null;
  bearer = null;
}

export interface Range {
  from: string;
  to: string;
  bucket: 'hour' | 'day';
}

export const keySeries = (id: string, range: Range) => must(client.GET('/api/keys/{id}/usage/series', { params: { path: { id }, query: range } }));
export const userSeries = (userId: string, range: Range) =>
  must(client.GET('/api/usage/{user_id}/series', { params: { path: { user_id: userId }, query: range } }));

export const keysUsage = (ids: string[], from: string, to: string) =>
  must(client.GET('/api/keys/usage', { params: { query: { ids: ids.join(','), from, to } } }));

export const auditEvents = (query: AuditQuery) => must(client.GET('/api/audit-events', { params: { query } }));

export const overview = (range: Range) => must(client.GET('/api/overview', { params: { query: range } }));

export const listKeys = (query: KeyQuery) => must(client.GET('/api/keys', { params: { query } }));

/** A range ending now: the last `hours` hours, bucketed by hour up to two days, else by day. */
export function lastHours(hours: number): Range {
  const to = new Date();
  const from = new Date(to.getTime() - hours * 3_600_000);
  return { from: from.toISOString(), to: to.toISOString(), bucket: hours <= 48 ? 'hour' : 'day' };
}
