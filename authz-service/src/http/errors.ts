import type { FastifyError, FastifyInstance } from 'fastify';
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

/** The methods registered for a route pattern (`/api/keys/:id`) that matches `path`. */
function allowedMethods(routes: readonly { method: string; url: string }[], path: string): string[] {
  const methods = new Set<string>();
  for (const r of routes) {
    const pattern = new RegExp(
      `^${r.url
        .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
        .replace(/:[A-Za-z_]\w*/g, '[^/]+')
        .replace(/\*/g, '.*')}$`,
    );
    if (pattern.test(path)) methods.add(r.method);
  }
  return [...methods].sort();
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
export function installErrorHandling(app: FastifyInstance, logger: Logger, routes: () => readonly { method: string; url: string }[]): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
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
  // A path the API serves, asked with a method it does not: 405 with the methods it does (RFC 9110).
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    const allowed = allowedMethods(routes(), path);
    if (allowed.length) {
      void reply
        .code(405)
        .header('allow', allowed.join(', '))
        .send({
          error: 'method_not_allowed',
          message: `${req.method} is not allowed on ${path}; use ${allowed.join(', ')}`,
          request_id: req.id,
        } satisfies ErrorBody);
      return;
    }
    void reply.code(404).send({ error: 'not_found', message: `No route ${req.method} ${path}`, request_id: req.id } satisfies ErrorBody);
  });
}
