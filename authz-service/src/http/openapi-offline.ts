import { loadAuthzConfig } from '../config.js';
import { planCatalogOf, type ServiceDeps } from '../deps.js';
import { API_VERSION, managementRoutes } from './api.js';
import { buildOpenApiDocument } from './openapi.js';

/** Placeholders that only satisfy config validation: nothing connects anywhere. */
const OFFLINE_ENV = {
  DATABASE_URL: 'postgres://offline.invalid/tollgate',
  REDIS_URL: 'redis://offline.invalid',
  KEY_HASH_SECRETS: 'offline-openapi-document-placeholder-secret',
  ADMIN_TOKEN: 'offline-openapi-placeholder',
};

/**
 * /openapi.json rendered without a server, Postgres or Redis (for the SDK generator): the same
 * route specs with default configuration. Route builders read only `config` (and the plans made
 * from it) when they are built;
 * anything else they touch would be a handler running, which rendering never does.
 */
export function renderOpenApiDocument(): Record<string, unknown> {
  const config = loadAuthzConfig(OFFLINE_ENV);
  const deps = new Proxy({ config, plans: planCatalogOf(config) } as Partial<ServiceDeps>, {
    get(target, prop) {
      if (prop in target) return target[prop as keyof ServiceDeps];
      if (typeof prop === 'symbol' || prop === 'then') return undefined;
      throw new Error(`rendering the OpenAPI document offline needs no deps.${prop}`);
    },
  }) as ServiceDeps;
  return buildOpenApiDocument(managementRoutes(deps), { version: API_VERSION });
}
