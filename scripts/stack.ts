// The local stack: Postgres, Redis, Envoy and Tollgate's services on loopback, one command.
// Usage: ./scripts/stack up [--detach] | status | down | logs [component]
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync, openSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import {
  REPO_ROOT, ensureDatabase, httpOk, portOpen, sleep, startEnvoy, startPostgres, startProcess, startRedis, waitFor,
  type ManagedProcess,
} from '@tollgate/devstack';

// TOLLGATE_STACK_DIR lets a second stack (the stack's own test, say) keep its state elsewhere.
const STACK = process.env.TOLLGATE_STACK_DIR || join(REPO_ROOT, '.stack');
const RUN = join(STACK, 'run');
const LOGS = join(STACK, 'logs');
mkdirSync(STACK, { recursive: true });
const SUPERVISOR_PID = join(RUN, 'supervisor.pid');
const READY = join(RUN, 'ready');

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

const ports = {
  envoy: intEnv('ENVOY_PORT', 8000),
  envoyAdmin: intEnv('ENVOY_ADMIN_PORT', 9901),
  backend: intEnv('BACKEND_PORT', 8081),
  authzHttp: intEnv('AUTHZ_HTTP_PORT', 8080),
  authzGrpc: intEnv('AUTHZ_GRPC_PORT', 9191),
  billingGrpc: intEnv('BILLING_GRPC_PORT', 9292),
  billingHttp: intEnv('BILLING_HTTP_PORT', 9293),
  postgres: intEnv('STACK_POSTGRES_PORT', 55432),
  redis: intEnv('STACK_REDIS_PORT', 56379),
};

const hasService = (pkg: string) => existsSync(join(REPO_ROOT, pkg, 'src', 'main.ts'));
const external = { postgres: Boolean(process.env.DATABASE_URL), redis: Boolean(process.env.REDIS_URL) };

interface ComponentInfo {
  name: string;
  port: number;
  /** Health URL when the component has one; else an open port counts as up. */
  health?: string;
}

function components(): ComponentInfo[] {
  const list: ComponentInfo[] = [];
  if (!external.postgres) list.push({ name: 'postgres', port: ports.postgres });
  if (!external.redis) list.push({ name: 'redis', port: ports.redis });
  list.push({ name: 'backend-hello', port: ports.backend, health: `http://127.0.0.1:${ports.backend}/health` });
  if (hasService('authz-service'))
    list.push({ name: 'authz-service', port: ports.authzHttp, health: `http://127.0.0.1:${ports.authzHttp}/health` });
  if (hasService('billing-sidecar'))
    list.push({ name: 'billing-sidecar', port: ports.billingHttp, health: `http://127.0.0.1:${ports.billingHttp}/health` });
  list.push({ name: 'envoy', port: ports.envoy, health: `http://127.0.0.1:${ports.envoyAdmin}/ready` });
  return list;
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number | undefined): pid is number {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A secret the stack generates once and keeps in .stack/ (mode 600) when the environment has none. */
function stackSecret(envVar: string, file: string): { value: string; generated: boolean } {
  const fromEnv = process.env[envVar];
  if (fromEnv) return { value: fromEnv, generated: false };
  const path = join(STACK, file);
  if (!existsSync(path)) {
    writeFileSync(path, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  }
  chmodSync(path, 0o600);
  return { value: readFileSync(path, 'utf8').trim(), generated: true };
}

const COLORS = [36, 35, 33, 32, 34, 31, 96, 95];
function prefixer(name: string, index: number, file: string): Transform {
  const log = createWriteStream(file, { flags: 'a' });
  const tag = process.stdout.isTTY ? `\x1b[${COLORS[index % COLORS.length]}m${name.padEnd(16)}\x1b[0m| ` : `${name.padEnd(16)}| `;
  let pending = '';
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      log.write(chunk);
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      cb(null, lines.map((l) => `${tag}${l}\n`).join(''));
    },
  });
  t.pipe(process.stdout);
  return t;
}

async function supervise(): Promise<void> {
  mkdirSync(RUN, { recursive: true });
  mkdirSync(LOGS, { recursive: true });
  rmSync(READY, { force: true });
  writeFileSync(SUPERVISOR_PID, `${process.pid}\n`);
  const running: { name: string; proc: ManagedProcess }[] = [];
  let stopping = false;

  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('stack: stopping…');
    for (const { name, proc } of running.reverse()) {
      await proc.stop(15_000);
      rmSync(join(RUN, `${name}.pid`), { force: true });
    }
    rmSync(READY, { force: true });
    rmSync(SUPERVISOR_PID, { force: true });
    console.log('stack: stopped');
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  const track = (name: string, proc: ManagedProcess) => {
    running.push({ name, proc });
    writeFileSync(join(RUN, `${name}.pid`), `${proc.pid}\n`);
    void proc.exitedPromise.then(() => {
      if (!stopping) console.error(`stack: ${name} exited unexpectedly (code ${proc.exitCode ?? proc.signal}); see .stack/logs/${name}.log`);
    });
  };
  let idx = 0;
  const out = (name: string) => prefixer(name, idx++, join(LOGS, `${name}.log`));

  try {
    let databaseUrl = process.env.DATABASE_URL;
    if (!external.postgres) {
      console.log(`stack: starting postgres on 127.0.0.1:${ports.postgres}`);
      const pg = await startPostgres({ dir: join(STACK, 'postgres'), port: ports.postgres, output: out('postgres') });
      track('postgres', pg.process);
      await ensureDatabase(pg.adminUrl, 'tollgate');
      databaseUrl = pg.urlFor('tollgate');
    }
    let redisUrl = process.env.REDIS_URL;
    if (!external.redis) {
      console.log(`stack: starting redis on 127.0.0.1:${ports.redis}`);
      const redis = await startRedis({ dir: join(STACK, 'redis'), port: ports.redis, persistent: true, output: out('redis') });
      track('redis', redis.process);
      redisUrl = redis.url;
    }
    const admin = stackSecret('ADMIN_TOKEN', 'admin-token');
    const hashSecret = stackSecret('KEY_HASH_SECRETS', 'key-hash-secret');
    // Service tokens and the vault are on in the local stack, with secrets of its own.
    const jwtSecret = stackSecret('GATEWAY_JWT_SECRET', 'gateway-jwt-secret');
    const vaultKey = stackSecret('VAULT_MASTER_KEYS', 'vault-master-key');
    if (admin.generated) console.log(`stack: admin token generated; it is in .stack/admin-token (export ADMIN_TOKEN=$(cat .stack/admin-token))`);

    const serviceEnv: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      ADMIN_TOKEN: admin.value,
      KEY_HASH_SECRETS: hashSecret.value,
      GATEWAY_JWT_SECRET: jwtSecret.generated ? `local:${jwtSecret.value}` : jwtSecret.value,
      VAULT_MASTER_KEYS: vaultKey.generated ? `local:${vaultKey.value}` : vaultKey.value,
      BACKEND_PORT: String(ports.backend),
      AUTHZ_HTTP_PORT: String(ports.authzHttp),
      AUTHZ_GRPC_PORT: String(ports.authzGrpc),
      BILLING_GRPC_PORT: String(ports.billingGrpc),
      BILLING_HTTP_PORT: String(ports.billingHttp),
      ENVOY_ACCESS_LOG_PATH: join(STACK, 'envoy', 'access.log'),
      ENVOY_ADMIN_URL: `http://127.0.0.1:${ports.envoyAdmin}`,
    };
    const startService = async (pkg: string, health: string) => {
      console.log(`stack: starting ${pkg}`);
      const proc = startProcess({
        name: pkg,
        command: process.execPath,
        // The sidecar's heap is capped so its RSS stays inside its budget (docs/benchmarks.md).
        args: [...(pkg === 'billing-sidecar' ? ['--max-old-space-size=128'] : []), '--conditions=source', '--import', 'tsx', join(REPO_ROOT, pkg, 'src', 'main.ts')],
        cwd: join(REPO_ROOT, pkg),
        env: serviceEnv,
        output: out(pkg),
      });
      track(pkg, proc);
      await waitFor(pkg, () => httpOk(health), { child: proc, timeoutMs: 60_000 });
    };
    await startService('backend-hello', `http://127.0.0.1:${ports.backend}/health/live`);
    const authz = hasService('authz-service');
    const billing = hasService('billing-sidecar');
    if (authz) await startService('authz-service', `http://127.0.0.1:${ports.authzHttp}/health/live`);
    if (billing) await startService('billing-sidecar', `http://127.0.0.1:${ports.billingHttp}/health/live`);
    console.log(`stack: starting envoy on 127.0.0.1:${ports.envoy}${authz ? '' : ' (ext_authz off: authz-service not built yet)'}`);
    const envoy = await startEnvoy({
      dir: join(STACK, 'envoy'),
      render: {
        listen: { host: '127.0.0.1', port: ports.envoy },
        adminPort: ports.envoyAdmin,
        backend: { host: '127.0.0.1', port: ports.backend },
        authz: authz ? { host: '127.0.0.1', port: ports.authzGrpc } : null,
        als: billing ? { host: '127.0.0.1', port: ports.billingGrpc } : null,
      },
      output: out('envoy'),
      logLevel: 'warn',
    });
    track('envoy', envoy.process);
    writeFileSync(READY, `${new Date().toISOString()}\n`);
    console.log(`stack: up — gateway http://127.0.0.1:${ports.envoy}${authz ? `, management API http://127.0.0.1:${ports.authzHttp}` : ''}`);
  } catch (err) {
    console.error(`stack: failed to start: ${(err as Error).message}`);
    await stopAll(1);
  }
  // Stay in the foreground until a signal arrives.
  await new Promise(() => {});
}

async function status(): Promise<number> {
  const sup = readPid(SUPERVISOR_PID);
  const supAlive = alive(sup);
  console.log(`${'COMPONENT'.padEnd(17)}${'STATE'.padEnd(7)}${'PORT'.padEnd(7)}PID`);
  console.log(`${'supervisor'.padEnd(17)}${(supAlive ? 'up' : 'down').padEnd(7)}${'-'.padEnd(7)}${supAlive ? sup : '-'}`);
  let allUp = supAlive;
  for (const c of components()) {
    const pid = readPid(join(RUN, `${c.name}.pid`));
    const isAlive = alive(pid);
    const up = isAlive && (c.health ? await httpOk(c.health) : await portOpen(c.port));
    allUp &&= up;
    console.log(`${c.name.padEnd(17)}${(up ? 'up' : 'down').padEnd(7)}${String(c.port).padEnd(7)}${isAlive ? pid : '-'}`);
  }
  if (external.postgres) console.log(`${'postgres'.padEnd(17)}external (DATABASE_URL)`);
  if (external.redis) console.log(`${'redis'.padEnd(17)}external (REDIS_URL)`);
  return allUp ? 0 : 3;
}

async function down(): Promise<void> {
  const sup = readPid(SUPERVISOR_PID);
  if (alive(sup)) {
    process.kill(sup, 'SIGTERM');
    const deadline = Date.now() + 30_000;
    while (alive(sup) && Date.now() < deadline) await sleep(100);
  }
  // Anything a crashed supervisor left behind.
  for (const c of components()) {
    const file = join(RUN, `${c.name}.pid`);
    const pid = readPid(file);
    if (alive(pid)) {
      process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + 10_000;
      while (alive(pid) && Date.now() < deadline) await sleep(100);
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    rmSync(file, { force: true });
  }
  rmSync(SUPERVISOR_PID, { force: true });
  rmSync(READY, { force: true });
  console.log('stack: down');
}

async function detach(): Promise<number> {
  mkdirSync(LOGS, { recursive: true });
  const logFile = join(LOGS, 'stack.log');
  const fd = openSync(logFile, 'a');
  rmSync(READY, { force: true });
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'up'], {
    cwd: REPO_ROOT,
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  child.unref();
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    if (existsSync(READY)) {
      console.log(`stack: up in the background; logs in .stack/logs/ (./scripts/stack logs)`);
      await status();
      return 0;
    }
    if (!alive(child.pid)) break;
    await sleep(200);
  }
  console.error(`stack: failed to start in the background; last lines of ${logFile}:`);
  console.error(readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n'));
  await down();
  return 1;
}

async function main(): Promise<void> {
  const [cmd = 'help', ...rest] = process.argv.slice(2);
  switch (cmd) {
    case 'up': {
      if (alive(readPid(SUPERVISOR_PID))) {
        console.log('stack: already running (./scripts/stack status; ./scripts/stack down to stop)');
        process.exit((await status()) === 0 ? 0 : 1);
      }
      if (rest.includes('--detach') || rest.includes('-d')) process.exit(await detach());
      await supervise();
      return;
    }
    // biome-ignore lint/suspicious/noFallthroughSwitchClause: process.exit() does not return
    case 'status':
      process.exit(await status());
    case 'down':
      await down();
      return;
    case 'logs': {
      const name = rest[0] ?? 'stack';
      const file = join(LOGS, `${name}.log`);
      if (!existsSync(file)) {
        console.error(`stack: no log for ${name} (components: ${components().map((c) => c.name).join(', ')})`);
        process.exit(1);
      }
      process.stdout.write(readFileSync(file));
      return;
    }
    default:
      console.log('usage: ./scripts/stack up [--detach] | status | down | logs [component]');
      process.exit(cmd === 'help' || cmd === '--help' ? 0 : 2);
  }
}

await main();
