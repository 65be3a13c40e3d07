import createClient, { type Client } from 'openapi-fetch';
import type { components, operations, paths } from './generated/openapi.js';

export type { components, operations, paths };
/** The webhook event types an endpoint may subscribe to, as the document lists them. */
export { webhookEndpointEventsValues as WEBHOOK_EVENT_TYPES } from './generated/openapi.js';
/** The API's named schemas, e.g. `Schemas['KeyRecord']`. */
export type Schemas = components['schemas'];
export type TollgateClient = Client<paths>;

export interface TollgateClientOptions {
  /** Where authz-service's management API is, e.g. http://127.0.0.1:8080 (or '' in the console, same origin). */
  baseUrl: string;
  /** An admin token or a keys:manage key, sent as `Authorization: Bearer …`. Leave it out to use the session cookie. */
  token?: string;
  fetch?: typeof globalThis.fetch;
  /** The session's csrf_token (POST /api/session): sent as X-CSRF-Token on state-changing calls. A function is read per call. */
  csrfToken?: string | (() => string | null | undefined);
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A typed client for every /api route in /openapi.json: `client.GET('/api/keys/{id}', { params: { path: { id } } })`
 * answers `{ data }` or `{ error }` typed from the document.
 */
export function createTollgateClient(options: TollgateClientOptions): TollgateClient {
  const client = createClient<paths>({
    baseUrl: options.baseUrl,
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.token ? { headers: { authorization: `Bearer ${options.token}` } } : {}),
  });
  const { csrfToken } = options;
  if (csrfToken !== undefined) {
    client.use({
      onRequest({ request }) {
        if (SAFE_METHODS.has(request.method)) return undefined;
        const value = typeof csrfToken === 'function' ? csrfToken() : csrfToken;
        if (value) request.headers.set('x-csrf-token', value);
        return request;
      },
    });
  }
  return client;
}
