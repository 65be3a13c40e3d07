import { z } from 'zod';
import { IDEMPOTENCY_KEY_PATTERN } from './idempotency.js';
import { apiSchemas } from './schemas/common.js';
import type { RouteSpec } from './routes.js';

const COMPONENT = '#/components/schemas/';

type JsonSchema = Record<string, unknown>;

/** Operations routes (common/ops.ts registers them); listed here so the document covers every route. */
const OPS_PATHS = {
  '/health': {
    get: {
      operationId: 'health',
      tags: ['operations'],
      summary: 'Readiness: Postgres and Redis checked (503 when one is down)',
      security: [],
      responses: { 200: { description: 'Ready' }, 503: { description: 'A dependency is down' } },
    },
  },
  '/health/live': {
    get: { operationId: 'liveness', tags: ['operations'], summary: 'Liveness', security: [], responses: { 200: { description: 'Serving' } } },
  },
  '/metrics': {
    get: {
      operationId: 'metrics',
      tags: ['operations'],
      summary: 'Prometheus metrics',
      security: [],
      responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } },
    },
  },
  '/openapi.json': {
    get: {
      operationId: 'openapi',
      tags: ['operations'],
      summary: 'This document',
      security: [],
      responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } },
    },
  },
};

function strip(schema: JsonSchema): JsonSchema {
  const { $schema: _s, $id: _i, ...rest } = schema;
  return rest;
}

/** A schema by reference when it is a named component, inline otherwise. */
function schemaRef(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const meta = apiSchemas.get(schema);
  if (meta) return { $ref: `${COMPONENT}${meta.id}` };
  return strip(z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as JsonSchema);
}

function parametersOf(schema: z.ZodObject | undefined, location: 'path' | 'query'): JsonSchema[] {
  if (!schema) return [];
  return Object.entries(schema.shape).map(([name, field]) => {
    const f = field as z.ZodType;
    const json = strip(z.toJSONSchema(f, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as JsonSchema);
    const { description, ...rest } = json;
    const param: JsonSchema = { name, in: location, required: location === 'path' || !f.safeParse(undefined).success, schema: rest };
    if (description) param.description = description;
    return param;
  });
}

/** Fastify's `/api/keys/:id` in OpenAPI's form, `/api/keys/{id}`. */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

/**
 * The OpenAPI 3.1 document, built from the route specs and the zod schemas the handlers validate
 * with: components from the schema registry, operations from the routes.
 */
export function buildOpenApiDocument(routes: readonly RouteSpec[], info: { version: string }): JsonSchema {
  const render = (io: 'input' | 'output') =>
    z.toJSONSchema(apiSchemas, { target: 'draft-2020-12', io, unrepresentable: 'any', uri: (id) => `${COMPONENT}${id}` }).schemas;
  // A request body is what a client sends: a field with a server-side default is optional there,
  // though always present in what the handler receives.
  const bodies = new Set(routes.flatMap((r) => (r.body ? [apiSchemas.get(r.body)?.id] : [])));
  const [inputs, outputs] = [render('input'), render('output')];
  const components: Record<string, JsonSchema> = {};
  for (const [id, schema] of Object.entries(outputs)) components[id] = strip((bodies.has(id) ? inputs[id]! : schema) as JsonSchema);

  const paths: Record<string, Record<string, unknown>> = structuredClone(OPS_PATHS);
  for (const route of routes) {
    const parameters = [...parametersOf(route.params, 'path'), ...parametersOf(route.query, 'query')];
    if (route.idempotent) {
      parameters.push({
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        description: 'Makes a retry safe: the same key with the same request answers the first result again (for 24 hours)',
        schema: { type: 'string', minLength: 1, maxLength: 255, pattern: IDEMPOTENCY_KEY_PATTERN },
      });
    }
    for (const h of route.requiredHeaders ?? []) {
      parameters.push({ name: h.name, in: 'header', required: true, description: h.description, schema: { type: 'string', minLength: 1 } });
    }
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(route.responses)) {
      responses[status] = r.schema
        ? { description: r.description, content: { [r.contentType ?? 'application/json']: { schema: schemaRef(r.schema, 'output') } } }
        : { description: r.description };
    }
    const operation: Record<string, unknown> = {
      operationId: route.operationId,
      tags: [route.tag],
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      ...(route.authentication === 'none' ? { security: [] } : route.authentication === 'session' ? { security: [{ session: [] }] } : {}),
      ...(parameters.length ? { parameters } : {}),
      ...(route.body ? { requestBody: { required: true, content: { 'application/json': { schema: schemaRef(route.body, 'input') } } } } : {}),
      responses,
    };
    (paths[openApiPath(route.url)] ??= {})[route.method.toLowerCase()] = operation;
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'Tollgate key-management API',
      version: info.version,
      description:
        'Create and control API keys. Every /api call needs `Authorization: Bearer <admin token>` or a Tollgate key with the `keys:manage` scope (its own user’s keys only), or the console session cookie from POST /api/session (with X-CSRF-Token on state-changing calls). See docs/management-api.md.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    security: [{ bearer: [] }, { session: [] }],
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An admin token (ADMIN_TOKEN) or a Tollgate key with keys:manage' },
        session: {
          type: 'apiKey',
          in: 'cookie',
          name: 'tollgate_session',
          description: 'The console session from POST /api/session; POST, PUT, PATCH and DELETE also need X-CSRF-Token',
        },
      },
    },
  };
}
