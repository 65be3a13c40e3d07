import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

/** A dependency check: resolves when the dependency answers, rejects (or times out) when not. */
export type HealthCheck = () => Promise<unknown>;

export interface OpsRoutesOptions {
  service: string;
  registry: Registry;
  checks?: Record<string, HealthCheck>;
  /** How long one dependency check may take before it counts as down. */
  checkTimeoutMs?: number;
}

export interface HealthReport {
  status: 'ok' | 'degraded';
  service: string;
  checks: Record<string, { status: 'ok' | 'down'; error?: string }>;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

export async function runHealthChecks(service: string, checks: Record<string, HealthCheck>, timeoutMs = 1000): Promise<HealthReport> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      try {
        await withTimeout(check(), timeoutMs);
        return [name, { status: 'ok' as const }] as const;
      } catch (err) {
        return [name, { status: 'down' as const, error: (err as Error).message }] as const;
      }
    }),
  );
  const report: HealthReport = { status: 'ok', service, checks: Object.fromEntries(entries) };
  if (entries.some(([, r]) => r.status === 'down')) report.status = 'degraded';
  return report;
}

/**
 * `/health` answers readiness (every dependency checked; 503 when one is down),
 * `/health/live` answers liveness only (the process serves HTTP), `/metrics` is Prometheus text.
 */
export function registerOpsRoutes(app: FastifyInstance, options: OpsRoutesOptions): void {
  const checks = options.checks ?? {};
  const timeoutMs = options.checkTimeoutMs ?? 1000;
  app.get('/health', async (_req, reply) => {
    const report = await runHealthChecks(options.service, checks, timeoutMs);
    return reply.code(report.status === 'ok' ? 200 : 503).send(report);
  });
  app.get('/health/live', async () => ({ status: 'ok', service: options.service }));
  app.get('/metrics', async (_req, reply) => {
    const text = await options.registry.metrics();
    return reply.header('content-type', options.registry.contentType).send(text);
  });
}
