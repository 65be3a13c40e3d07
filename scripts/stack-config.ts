// Where the local stack keeps its files, and which components it runs on which ports: read from
// the environment (and .env) once, shared by the CLI (scripts/stack.ts) and the supervisor.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '@tollgate/devstack';

// TOLLGATE_STACK_DIR lets a second stack (the stack's own test, say) keep its state elsewhere.
export const STACK = process.env.TOLLGATE_STACK_DIR || join(REPO_ROOT, '.stack');
export const RUN = join(STACK, 'run');
export const LOGS = join(STACK, 'logs');
mkdirSync(STACK, { recursive: true });
export const SUPERVISOR_PID = join(RUN, 'supervisor.pid');
export const READY = join(RUN, 'ready');

if (existsSync(join(REPO_ROOT, '.env'))) process.loadEnvFile(join(REPO_ROOT, '.env'));

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    console.error(`stack: ${name} must be a port number (1-65535), got "${raw}"`);
    process.exit(2);
  }
  return n;
}

export const ports = {
  envoy: intEnv('ENVOY_PORT', 8000),
  envoyAdmin: intEnv('ENVOY_ADMIN_PORT', 9901),
  envoyTls: intEnv('ENVOY_TLS_PORT', 8443),
  backend: intEnv('BACKEND_PORT', 8081),
  authzHttp: intEnv('AUTHZ_HTTP_PORT', 8080),
  authzGrpc: intEnv('AUTHZ_GRPC_PORT', 9191),
  billingGrpc: intEnv('BILLING_GRPC_PORT', 9292),
  billingHttp: intEnv('BILLING_HTTP_PORT', 9293),
  postgres: intEnv('STACK_POSTGRES_PORT', 55432),
  redis: intEnv('STACK_REDIS_PORT', 56379),
};

export const hasService = (pkg: string) => existsSync(join(REPO_ROOT, pkg, 'src', 'main.ts'));
export const external = { postgres: Boolean(process.env.DATABASE_URL), redis: Boolean(process.env.REDIS_URL) };

export interface ComponentInfo {
  name: string;
  port: number;
  /** Health URL when the component has one; else an open port counts as up. */
  health?: string;
}

export function components(): ComponentInfo[] {
  const list: ComponentInfo[] = [];
  if (!external.postgres) list.push({ name: 'postgres', port: ports.postgres });
  if (!external.redis) list.push({ name: 'redis', port: ports.redis });
  list.push({ name: 'backend-hello', port: ports.backend, health: `http://127.0.0.1:${ports.backend}/health` });
  if (hasService('authz-service')) list.push({ name: 'authz-service', port: ports.authzHttp, health: `http://127.0.0.1:${ports.authzHttp}/health` });
  if (hasService('billing-sidecar')) list.push({ name: 'billing-sidecar', port: ports.billingHttp, health: `http://127.0.0.1:${ports.billingHttp}/health` });
  list.push({ name: 'envoy', port: ports.envoy, health: `http://127.0.0.1:${ports.envoyAdmin}/ready` });
  return list;
}

/** Compose's `restart:` policies that make sense here; STACK_RESTART picks one. */
export function restartPolicy(): 'unless-stopped' | 'no' {
  const raw = process.env.STACK_RESTART;
  if (raw === undefined || raw === '' || raw === 'unless-stopped') return 'unless-stopped';
  if (raw === 'no') return 'no';
  console.error(`stack: STACK_RESTART must be unless-stopped or no, got "${raw}"`);
  process.exit(2);
}
