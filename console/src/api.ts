import { createTollgateClient, type Schemas, type TollgateClient } from '@tollgate/sdk';

export type Key = Schemas['Key'];

/** What POST/GET /api/session answers. The csrf_token lives only in this module's memory. */
export interface Session {
  kind: 'admin' | 'owner';
  user_id: string | null;
  scopes: string[];
  expires_at: string;
  idle_expires_at: string;
  csrf_token: string;
}

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

/**
 * Routes of the console contract that the generated document may not list yet (audit events,
 * series, batch usage, overview, session): called through the same client, typed here.
 */
// biome-ignore lint/suspicious/noExplicitAny: the contract paths are typed by the wrappers below
const loose = client as unknown as { GET: any; POST: any; DELETE: any };

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
    const session = await must<Session>(loose.POST('/api/session', { body: { token } }));
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
  const { data, response } = (await loose.GET('/api/session')) as Answer<Session>;
  if (!response.ok || !data) return null;
  csrf = data.csrf_token;
  return data;
}

export async function signOut(): Promise<void> {
  if (!bearer) await loose.DELETE('/api/session');
  csrf = null;
  bearer = null;
}

export interface OutcomePoint {
  t: string;
  allowed: number;
  unauthenticated: number;
  forbidden: number;
  rate_limited: number;
  server_error: number;
  other: number;
}
export interface Series {
  bucket: 'hour' | 'day';
  points: OutcomePoint[];
}
export interface Range {
  from: string;
  to: string;
  bucket: 'hour' | 'day';
}

export const keySeries = (id: string, range: Range) => must<Series>(loose.GET('/api/keys/{id}/usage/series', { params: { path: { id }, query: range } }));
export const userSeries = (userId: string, range: Range) =>
  must<Series>(loose.GET('/api/usage/{user_id}/series', { params: { path: { user_id: userId }, query: range } }));

export interface KeyUsageSummary {
  requests: number;
  by_outcome: Record<string, number>;
  last_used_at: string | null;
  daily: number[];
}
export const keysUsage = (ids: string[], from: string, to: string) =>
  must<{ data: Record<string, KeyUsageSummary> }>(loose.GET('/api/keys/usage', { params: { query: { ids: ids.join(','), from, to } } }));

export interface AuditEvent {
  id: string;
  at?: string;
  created_at?: string;
  actor: string;
  action: string;
  key_id?: string | null;
  [field: string]: unknown;
}
export interface AuditQuery {
  actor?: string;
  action?: string;
  key_id?: string;
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
}
export const auditEvents = (query: AuditQuery) =>
  must<{ data: AuditEvent[]; next_cursor: string | null }>(loose.GET('/api/audit-events', { params: { query } }));

export interface Overview {
  series?: Series;
  top_keys?: { id: string; user_id: string | null; requests: number }[];
  top_users?: { id: string; requests: number }[];
  denials?: { error_code: string; requests: number }[];
}
export const overview = (range: Range) => must<Overview>(loose.GET('/api/overview', { params: { query: range } }));

export interface KeyQuery {
  q?: string;
  status?: string;
  cursor?: string;
  user_id?: string;
}
export const listKeys = (query: KeyQuery) => must<Schemas['KeyList']>(loose.GET('/api/keys', { params: { query } }));

/** A range ending now: the last `hours` hours, bucketed by hour up to two days, else by day. */
export function lastHours(hours: number): Range {
  const to = new Date();
  const from = new Date(to.getTime() - hours * 3_600_000);
  return { from: from.toISOString(), to: to.toISOString(), bucket: hours <= 48 ? 'hour' : 'day' };
}
