import Fastify, { type FastifyInstance } from 'fastify';
import { createMetricsRegistry, registerOpsRoutes, type Logger } from '@tollgate/common';

/** Identity headers the gateway sets on an allowed request (never sent by clients: Envoy drops those). */
const IDENTITY_HEADERS = {
  userId: 'x-user-id',
  keyId: 'x-api-key-id',
  scopes: 'x-api-key-scopes',
  project: 'x-service-project',
  service: 'x-service-name',
} as const;

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export function buildBackend(_logger: Logger): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });

  // /echo reflects any body as text, whatever its content type.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  registerOpsRoutes(app, { service: 'backend-hello', registry: createMetricsRegistry('backend-hello') });

  app.get('/hello', async (req) => {
    const userId = header(req.headers[IDENTITY_HEADERS.userId]);
    const keyId = header(req.headers[IDENTITY_HEADERS.keyId]);
    const scopes = header(req.headers[IDENTITY_HEADERS.scopes]);
    const project = header(req.headers[IDENTITY_HEADERS.project]);
    const service = header(req.headers[IDENTITY_HEADERS.service]);
    const caller = userId ?? (service ? `${project ?? '?'}/${service}` : 'anonymous');
    return {
      message: `Hello, ${caller}!`,
      user_id: userId ?? null,
      api_key_id: keyId ?? null,
      scopes: scopes ? scopes.split(/[ ,]+/).filter(Boolean) : [],
      service: service ? { project: project ?? null, name: service } : null,
      request_id: header(req.headers['x-request-id']) ?? null,
    };
  });

  const echo = async (req: import('fastify').FastifyRequest) => {
    const url = new URL(req.url, 'http://backend');
    const body = req.body instanceof Buffer ? req.body.toString('utf8') : null;
    return {
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body,
    };
  };
  app.all('/echo', echo);
  app.all('/echo/*', echo);

  return app;
}
