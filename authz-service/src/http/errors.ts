import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError, type ErrorBody, type Logger } from '@tollgate/common';
import type { z } from 'zod';

/** Schema failures: the request does not match the documented shape (unknown field, out of range…). */
export function invalidRequest(where: 'body' | 'query' | 'path', error: z.ZodError): HttpError {
  const details = error.issues.map((i) => ({
    field: [where, ...i.path.map(String)].join('.'),
    code: i.code,
    message: i.message,
  }));
  const first = details[0];
  return new HttpError(400, 'invalid_request', first ? `${first.field}: ${first.message}` : `invalid ${where}`, details);
}

export const notFound = (what = 'key') => new HttpError(404, 'not_found', `No such ${what}`);

/** A method and URL pattern the API serves, with the schema its path parameters must pass. */
export interface ServedRoute {
  method: string;
  url: string;
  params?: z.ZodType;
}

/**
 * The methods of the routes that would take `path`. Patterns of the same shape can share a
 * path (`/api/keys/:user_id` and `/api/keys/:id`): a route counts only when its path parameters
 * pass its own schema, so each path's Allow names the methods that take it.
 */
function allowedMethods(routes: readonly ServedRoute[], path: string): string[] {
  const shaped = new Set<string>();
  const methods = new Set<string>();
  for (const r of routes) {
    const names: string[] = [];
    const pattern = new RegExp(
      `^${r.url
        .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
        .replace(/:([A-Za-z_]\w*)/g, (_m, name: string) => {
          names.push(name);
          return '([^/]+)';
        })
        .replace(/\*/g, '.*')}$`,
    );
    const match = pattern.exec(path);
    if (!match) continue;
    shaped.add(r.method);
    if (r.params) {
      const values = Object.fromEntries(names.map((n, i) => [n, safeDecode(match[i + 1]!)]));
      if (!r.params.safeParse(values).success) continue;
    }
    methods.add(r.method);
  }
  // Parameters no route accepts (a malformed id): every method of the shape answers 400, not 405.
  return [...(methods.size ? methods : shaped)].sort();
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * A call whose path parameters its route refuses, on a path that other methods take: 405 with
 * their Allow (PATCH /api/keys/alice is a user's path, which only GET takes), not a 400 about a
 * key id nobody asked for. Null when no route takes the path either, or this method would.
 */
export function methodNotAllowed(routes: readonly ServedRoute[], method: string, path: string, why?: string): HttpError | null {
  const allowed = allowedMethods(routes, path);
  if (!allowed.length || allowed.includes(method)) return null;
  const message = `${method} is not allowed on ${path}; use ${allowed.join(', ')}${why ? ` (${method} here: ${why})` : ''}`;
  return new HttpError(405, 'method_not_allowed', message, undefined, {
    allow: allowed.join(', '),
  });
}

/** Fastify's own errors (body parsing, limits) that a client caused, in our shape. */
function fromFastifyError(err: FastifyError): HttpError | null {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new HttpError(400, 'invalid_json', 'The request body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpError(415, 'unsupported_media_type', 'Send the request body as application/json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpError(413, 'payload_too_large', 'The request body is too large');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HttpError(400, 'invalid_request', 'Content-Length does not match the body');
    default:
      break;
  }
  // JSON.parse errors surface with statusCode 400 and no code on some paths.
  if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.message))) {
    return new HttpError(400, 'invalid_json', 'The request body is not valid JSON');
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return new HttpError(err.statusCode, 'invalid_request', err.message);
  }
  return null;
}

/**
 * Every answer that is not a success uses `{error, message, details?}`, including Fastify's own
 * (malformed JSON, unknown route). Unexpected errors are logged without the request body, which
 * may carry a key, and answered with a generic 500. Each error body carries the request id
 * (`request_id`, also the `x-request-id` header on every answer; see request-id.ts).
 */
export function installErrorHandling(app: FastifyInstance, logger: Logger, routes: () => readonly ServedRoute[]): void {
  // A path the API serves, asked with a method it does not: 405 with the methods it does (RFC 9110).
  const answerUnrouted = (req: FastifyRequest, reply: FastifyReply): void => {
    const path = req.url.split('?')[0]!;
    const refused = methodNotAllowed(routes(), req.method, path);
    if (refused) {
      void reply
        .code(405)
        .headers(refused.headers)
        .send({ ...refused.toBody(), request_id: req.id } satisfies ErrorBody);
      return;
    }
    void reply.code(404).send({ error: 'not_found', message: `No route ${req.method} ${path}`, request_id: req.id } satisfies ErrorBody);
  };
  app.setErrorHandler((err: FastifyError, req, reply) => {
    // Fastify refuses a QUERY without Content-Type before routing; no route takes QUERY at all.
    if (req.is404) {
      answerUnrouted(req, reply);
      return;
    }
    const known = err instanceof HttpError ? err : fromFastifyError(err);
    if (known) {
      void reply
        .code(known.status)
        .headers(known.headers)
        .send({ ...known.toBody(), request_id: req.id } satisfies ErrorBody);
      return;
    }
    logger.error({ err: err.message, code: err.code, method: req.method, route: req.routeOptions.url, requestId: req.id }, 'management API error');
    void reply
      .code(500)
      .send({ error: 'internal_error', message: 'Something went wrong on our side; see the authz-service logs', request_id: req.id } satisfies ErrorBody);
  });
  app.setNotFoundHandler(answerUnrouted);
}
