import { Registry, collectDefaultMetrics } from 'prom-client';

/** A registry per service (not prom-client's global one) so tests can run many services in one process. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, prefix: 'tollgate_' });
  return registry;
}
