import Fastify, { type FastifyInstance } from 'fastify';
import { registerOpsRoutes } from '@tollgate/common';
import type { ServiceDeps } from '../deps.js';

// Interim: operations routes only, until the key-management API lands on this module.
export function buildManagementApi(deps: ServiceDeps): FastifyInstance {
  const app = Fastify({ logger: false });
  registerOpsRoutes(app, { service: 'authz-service', registry: deps.registry, checks: deps.healthChecks });
  return app;
}
