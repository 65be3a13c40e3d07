import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { ServiceDeps } from '../deps.js';
import type { Actor } from './auth.js';
import type { HttpError } from '@tollgate/common';
import { invalidRequest, methodNotAllowed, type ServedRoute } from './errors.js';
import { authenticateRequest, requireSessionCookie } from './session-auth.js';

type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteResponse {
  description: string;
  /** A schema registered in `apiSchemas` (so it is a named component) or any zod schema. */
  schema?: z.ZodType;
  /** Non-JSON bodies (e.g. Prometheus text) by media type. */
  contentType?: string;
}

interface HandlerContext<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  actor: Actor;
  request: FastifyRequest;
  reply: FastifyReply;
}

interface HandlerResult {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

type Parsed<S> = S extends z.ZodType ? z.output<S> : undefined;

/**
 * One management route: how it is called, what it accepts and answers, and its handler. The same
 * object registers the route with Fastify (validating with its schemas) and describes it in
 * /openapi.json, so the two cannot disagree.
 */
export interface RouteSpec<
  P extends z.ZodObject | undefined = z.ZodObject | undefined,
  Q extends z.ZodObject | undefined = z.ZodObject | undefined,
  B extends z.ZodType | undefined = z.ZodType | undefined,
> {
  method: HttpMethod;
  /** Fastify syntax: /api/keys/:id */
  url: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  params?: P;
  query?: Q;
  body?: B;
  /** Accepts an Idempotency-Key header (documented as a header parameter). */
  idempotent?: boolean;
  /** Request headers the handler requires and checks itself (documented as required header parameters). */
  requiredHeaders?: { name: string; description: string }[];
  /**
   * Who may call: by default a bearer credential or the console session cookie (session-auth.ts);
   * 'none' for sign-in itself; 'session' for routes about the cookie's own session.
   */
  authentication?: 'none' | 'session';
  responses: Record<number, RouteResponse>;
  handler: (ctx: HandlerContext<Parsed<P>, Parsed<Q>, Parsed<B>>) => Promise<HandlerResult>;
}

/** Keeps each route's parameter types inferred from its own schemas. */
export function defineRoute<
  P extends z.ZodObject | undefined = undefined,
  Q extends z.ZodObject | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
>(spec: RouteSpec<P, Q, B>): RouteSpec {
  return spec as unknown as RouteSpec;
}

function parseWith(
  schema: z.ZodType | undefined,
  value: unknown,
  where: 'body' | 'query' | 'path',
  instead?: (error: z.ZodError) => HttpError | null,
): unknown {
  if (!schema) return undefined;
  const r = schema.safeParse(value);
  if (!r.success) throw instead?.(r.error) ?? invalidRequest(where, r.error);
  return r.data;
}

declare module 'fastify' {
  interface FastifyRequest {
    managementActor?: Actor;
    /** The JSON body as received, for signature checks over the exact bytes (Stripe webhooks). */
    rawBody?: string;
  }
}

/**
 * Registers routes. Authentication runs in onRequest, before the body is even parsed, so a
 * caller without a credential learns nothing from validation errors.
 */
export function registerRoutes(app: FastifyInstance, deps: ServiceDeps, routes: readonly RouteSpec[], served: () => readonly ServedRoute[]): void {
  for (const spec of routes) {
    app.route({
      method: spec.method,
      url: spec.url,
      onRequest: async (request) => {
        if (spec.authentication === 'none') return;
        if (spec.authentication === 'session') requireSessionCookie(request);
        else request.managementActor = await authenticateRequest(deps, request);
      },
      handler: async (request, reply) => {
        const params = parseWith(spec.params, request.params, 'path', (error) =>
          methodNotAllowed(served(), request.method, request.url.split('?')[0]!, error.issues[0]?.message),
        );
        const query = parseWith(spec.query, request.query, 'query');
        // A POST with no body at all (e.g. revoke without a reason) means "no fields"; a JSON
        // null is a body, and not an object.
        const body = parseWith(spec.body, request.body === undefined ? {} : request.body, 'body');
        const result = await spec.handler({ params, query, body, actor: request.managementActor!, request, reply } as HandlerContext<
          undefined,
          undefined,
          undefined
        >);
        return reply
          .code(result.status)
          .headers(result.headers ?? {})
          .send(result.body);
      },
    });
  }
}
