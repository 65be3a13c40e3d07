import Fastify, { type FastifyInstance } from 'fastify';
import { registerOpsRoutes } from '@tollgate/common';
import type { ServiceDeps } from '../deps.js';
import { actorLabel } from './auth.js';
import { installErrorHandling } from './errors.js';
import { KeyManagement } from './key-management.js';
import { keyRoutes } from './key-routes.js';
import { registerConsoleStatic } from './console-static.js';
import { buildOpenApiDocument } from './openapi.js';
import { managementRequestId } from './request-id.js';
import { registerRoutes, type RouteSpec } from './routes.js';
import { assertStorableText } from './storable-text.js';
import { auditRoutes } from './audit-routes.js';
import { consoleUsageRoutes } from './console-usage-routes.js';
import { sessionRoutes } from './session-routes.js';
import { tokenRoutes } from './token-routes.js';
import { usageRoutes } from './usage-routes.js';
import { vaultRoutes } from './vault-routes.js';
import { operatorCredentialRoutes } from './operator-credential-routes.js';
import { billingRoutes } from './billing-routes.js';
import { planRoutes } from './plan-routes.js';
import { webhookRoutes } from './webhook-routes.js';

export const API_VERSION = '1.0.0';
/** Management bodies are small; anything bigger is a mistake or an attack. */
const BODY_LIMIT_BYTES = 64 * 1024;

const registered = new WeakMap<FastifyInstance, { method: string; url: string }[]>();

/** Every method and URL the API serves (HEAD included), as Fastify registered them. */
export function registeredRoutes(app: FastifyInstance): readonly { method: string; url: string }[] {
  return registered.get(app) ?? [];
}

/** Every management route, for registration and for the OpenAPI document. */
export function managementRoutes(deps: ServiceDeps): RouteSpec[] {
  return [
    ...keyRoutes(new KeyManagement(deps)),
    ...usageRoutes(deps),
    ...tokenRoutes(deps),
    ...vaultRoutes(deps),
    ...sessionRoutes(deps),
    ...auditRoutes(deps),
    ...consoleUsageRoutes(deps),
    ...operatorCredentialRoutes(deps),
    ...billingRoutes(deps),
    ...planRoutes(deps),
    ...webhookRoutes(deps),
  ];
}

/**
 * The key-management HTTP API (seed 003's endpoints and seed 004's lifecycle), the operations
 * routes (/health, /health/live, /metrics) and /openapi.json. The caller listens.
 */
export function buildManagementApi(deps: ServiceDeps): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT_BYTES, requestIdHeader: false, genReqId: managementRequestId });
  // Error bodies carry the id as `request_id`; the header is on every answer, successes too.
  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id);
  });
  // JSON only: a text/plain body would otherwise reach validation as a string.
  app.removeContentTypeParser('text/plain');
  // An empty body sent with Content-Type: application/json (curl -X DELETE -H 'Content-Type: …')
  // means "no body", not bad JSON; everything else goes to Fastify's own parser, which also
  // refuses __proto__ and constructor.prototype keys.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, raw, done) => {
    const body = typeof raw === 'string' ? raw : raw.toString('utf8');
    request.rawBody = body;
    if (body === '') {
      done(null, undefined);
      return;
    }
    parseJson(request, body, done);
  });
  app.addHook('preValidation', async (request) => assertStorableText(request));
  const seen: { method: string; url: string }[] = [];
  registered.set(app, seen);
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) seen.push({ method, url: r.url });
  });
  const routes = managementRoutes(deps);
  // Fastify adds HEAD beside each GET; it takes the same path parameters.
  const paramsOf = new Map(routes.map((r) => [`${r.method} ${r.url}`, r.params]));
  const served = () => seen.map((r) => ({ ...r, params: paramsOf.get(`${r.method === 'HEAD' ? 'GET' : r.method} ${r.url}`) }));
  installErrorHandling(app, deps.logger, served);
  registerOpsRoutes(app, { service: 'authz-service', registry: deps.registry, checks: deps.healthChecks });

  registerRoutes(app, deps, routes, served);
  const document = buildOpenApiDocument(routes, { version: API_VERSION });
  app.get('/openapi.json', async () => document);
  registerConsoleStatic(app, deps.config.CONSOLE_DIST_DIR);

  // One line per management call: who, what, outcome. Never headers or bodies (they carry secrets).
  app.addHook('onResponse', async (request, reply) => {
    if (!request.url.startsWith('/api/')) return;
    deps.logger.info(
      {
        method: request.method,
        route: request.routeOptions.url ?? null,
        status: reply.statusCode,
        actor: request.managementActor ? actorLabel(request.managementActor) : null,
        ms: Math.round(reply.elapsedTime),
      },
      'management call',
    );
  });
  return app;
}
