// The local stack: Postgres, Redis, Envoy and Tollgate's services on loopback, one command.
// Usage: ./scripts/stack up [--detach] | status | down | logs [component]
// A supervisor restarts a component that dies, with backoff; `up` brings back what is down (docs/running.md).
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync, openSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { Transform, type Writable } from 'node:stream';
import {
  REPO_ROOT,
  createLocalTls,
  renderSdsConfig,
  RestartBackoff,
  ensureDatabase,
  httpOk,
  portOpen,
  sleep,
  startEnvoy,
  startPostgres,
  startProcess,
  startRedis,
  waitFor,
  type ManagedProcess,
} from '@tollgate/devstack';
import { componentStateFile, describeExit, readComponentState, writeComponentState, type ComponentExit, type ComponentState } from './stack-state.js';

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
  envoyTls: intEnv('ENVOY_TLS_PORT', 8443),
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
  if (hasService('authz-service')) list.push({ name: 'authz-service', port: ports.authzHttp, health: `http://127.0.0.1:${ports.authzHttp}/health` });
  if (hasService('billing-sidecar')) list.push({ name: 'billing-sidecar', port: ports.billingHttp, health: `http://127.0.0.1:${ports.billingHttp}/health` });
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
  } catch {
    return false;
  }
  // A killed process whose parent has not reaped it yet still answers kill(0): a zombie is dead.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
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

/** Compose's `restart:` policies that make sense here; STACK_RESTART picks one. */
function restartPolicy(): 'unless-stopped' | 'no' {
  const raw = process.env.STACK_RESTART;
  if (raw === undefined || raw === '' || raw === 'unless-stopped') return 'unless-stopped';
  if (raw === 'no') return 'no';
  console.error(`stack: STACK_RESTART must be unless-stopped or no, got "${raw}"`);
  process.exit(2);
}

/** One component under the supervisor: how to start it, and what happened to it so far. */
interface Unit {
  name: string;
  /** Starts the component and resolves once it is ready; `onSpawn` gets the process as soon as it exists. */
  start: (onSpawn: (proc: ManagedProcess) => void) => Promise<void>;
  proc?: ManagedProcess;
  startedAt: number;
  restarts: number;
  lastExit: ComponentExit | null;
  backoff: RestartBackoff;
  timer?: NodeJS.Timeout;
  state: ComponentState['state'];
}

async function supervise(): Promise<void> {
  mkdirSync(RUN, { recursive: true });
  mkdirSync(LOGS, { recursive: true });
  rmSync(READY, { force: true });
  writeFileSync(SUPERVISOR_PID, `${process.pid}\n`);
  const policy = restartPolicy();
  const units: Unit[] = [];
  let stopping = false;
  // Restarts begin once the whole stack has come up; a failure before that stops everything.
  let healing = false;

  const save = (u: Unit) => writeComponentState(RUN, u.name, { state: u.state, restarts: u.restarts, lastExit: u.lastExit });

  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('stack: stopping…');
    for (const u of [...units].reverse()) {
      clearTimeout(u.timer);
      await u.proc?.stop(15_000);
      rmSync(join(RUN, `${u.name}.pid`), { force: true });
      rmSync(componentStateFile(RUN, u.name), { force: true });
    }
    rmSync(READY, { force: true });
    rmSync(SUPERVISOR_PID, { force: true });
    console.log('stack: stopped');
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  const scheduleRestart = (u: Unit) => {
    if (stopping || !healing || u.timer) return;
    if (policy === 'no') {
      u.state = 'exited';
      save(u);
      console.error(`stack: ${u.name} stays down (STACK_RESTART=no); ./scripts/stack up starts it again`);
      return;
    }
    const delay = u.backoff.delayAfter(Date.now() - u.startedAt);
    u.state = 'restarting';
    save(u);
    console.error(`stack: restarting ${u.name} in ${delay} ms`);
    u.timer = setTimeout(() => {
      u.timer = undefined;
      void restart(u);
    }, delay);
  };

  const onExit = (u: Unit, proc: ManagedProcess) => {
    if (stopping || u.proc !== proc) return;
    u.proc = undefined;
    u.lastExit = { code: proc.exitCode, signal: proc.signal, at: Date.now() };
    rmSync(join(RUN, `${u.name}.pid`), { force: true });
    console.error(`stack: ${u.name} exited unexpectedly (code ${proc.exitCode ?? proc.signal}); see .stack/logs/${u.name}.log`);
    u.state = 'exited';
    save(u);
    scheduleRestart(u);
  };

  const launch = async (u: Unit) => {
    u.startedAt = Date.now();
    u.state = 'starting';
    save(u);
    let spawned: ManagedProcess | undefined;
    try {
      await u.start((proc) => {
        spawned = proc;
        u.proc = proc;
        writeFileSync(join(RUN, `${u.name}.pid`), `${proc.pid}\n`);
        void proc.exitedPromise.then(() => onExit(u, proc));
      });
    } catch (err) {
      if (stopping) return;
      console.error(`stack: ${u.name} failed to start: ${(err as Error).message}`);
      // Alive but never ready: stop it, and its exit takes the restart path.
      if (spawned && !spawned.exited) await spawned.stop(5_000);
      else if (!spawned) scheduleRestart(u);
      throw err;
    }
    if (stopping || u.proc !== spawned) return;
    u.state = 'up';
    save(u);
  };

  const restart = async (u: Unit) => {
    if (stopping || u.proc) return;
    u.restarts += 1;
    console.log(`stack: starting ${u.name} again (restart ${u.restarts})`);
    // A failed start has already scheduled the next attempt.
    await launch(u).catch(() => {});
  };

  // `./scripts/stack up` on a running stack: whatever is down starts now, in dependency order.
  process.on('SIGUSR2', () => {
    void (async () => {
      for (const u of units) {
        if (stopping || u.proc) continue;
        clearTimeout(u.timer);
        u.timer = undefined;
        u.backoff.reset();
        await restart(u);
      }
    })();
  });

  let idx = 0;
  const out = (name: string) => prefixer(name, idx++, join(LOGS, `${name}.log`));
  const add = async (name: string, start: (output: Writable, onSpawn: (proc: ManagedProcess) => void) => Promise<void>) => {
    const output = out(name);
    const u: Unit = {
      name,
      start: (onSpawn) => start(output, onSpawn),
      startedAt: Date.now(),
      restarts: 0,
      lastExit: null,
      backoff: new RestartBackoff(),
      state: 'starting',
    };
    units.push(u);
    await launch(u);
  };

  try {
    let databaseUrl = process.env.DATABASE_URL;
    if (!external.postgres) {
      console.log(`stack: starting postgres on 127.0.0.1:${ports.postgres}`);
      await add('postgres', async (output, onSpawn) => {
        const pg = await startPostgres({ dir: join(STACK, 'postgres'), port: ports.postgres, output, onSpawn });
        await ensureDatabase(pg.adminUrl, 'tollgate');
        databaseUrl = pg.urlFor('tollgate');
      });
    }
    let redisUrl = process.env.REDIS_URL;
    if (!external.redis) {
      console.log(`stack: starting redis on 127.0.0.1:${ports.redis}`);
      await add('redis', async (output, onSpawn) => {
        const redis = await startRedis({ dir: join(STACK, 'redis'), port: ports.redis, persistent: true, output, onSpawn });
        redisUrl = redis.url;
      });
    }
    ensureConsoleBuilt();
    const admin = stackSecret('ADMIN_TOKEN', 'admin-token');
    const hashSecret = stackSecret('KEY_HASH_SECRETS', 'key-hash-secret');
    // Service tokens and the vault are on in the local stack, with secrets of its own.
    const jwtSecret = stackSecret('GATEWAY_JWT_SECRET', 'gateway-jwt-secret');
    const vaultKey = stackSecret('VAULT_MASTER_KEYS', 'vault-master-key');
    // Sign local test deliveries with it (`stripe listen` prints its own; export it to use that).
    const stripeWebhook = stackSecret('STRIPE_WEBHOOK_SECRET', 'stripe-webhook-secret');
    if (admin.generated) console.log(`stack: admin token generated; it is in .stack/admin-token (export ADMIN_TOKEN=$(cat .stack/admin-token))`);

    const serviceEnv: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      ADMIN_TOKEN: admin.value,
      KEY_HASH_SECRETS: hashSecret.value,
      GATEWAY_JWT_SECRET: jwtSecret.generated ? `local:${jwtSecret.value}` : jwtSecret.value,
      VAULT_MASTER_KEYS: vaultKey.generated ? `local:${vaultKey.value}` : vaultKey.value,
      STRIPE_WEBHOOK_SECRET: stripeWebhook.generated ? `whsec_${stripeWebhook.value}` : stripeWebhook.value,
      // A webhook receiver on this machine is the usual local target (docs/webhooks.md).
      WEBHOOK_ALLOW_PRIVATE_TARGETS: process.env.WEBHOOK_ALLOW_PRIVATE_TARGETS ?? 'true',
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
      await add(pkg, async (output, onSpawn) => {
        const proc = startProcess({
          name: pkg,
          command: process.execPath,
          // The sidecar's heap is capped so its RSS stays inside its budget (docs/benchmarks.md).
          args: [
            ...(pkg === 'billing-sidecar' ? ['--max-old-space-size=128'] : []),
            '--conditions=source',
            '--import',
            'tsx',
            join(REPO_ROOT, pkg, 'src', 'main.ts'),
          ],
          cwd: join(REPO_ROOT, pkg),
          env: serviceEnv,
          output,
          onSpawn,
        });
        await waitFor(pkg, () => httpOk(health), { child: proc, timeoutMs: 60_000 });
      });
    };
    await startService('backend-hello', `http://127.0.0.1:${ports.backend}/health/live`);
    const authz = hasService('authz-service');
    const billing = hasService('billing-sidecar');
    if (authz) await startService('authz-service', `http://127.0.0.1:${ports.authzHttp}/health/live`);
    if (billing) await startService('billing-sidecar', `http://127.0.0.1:${ports.billingHttp}/health/live`);
    console.log(`stack: starting envoy on 127.0.0.1:${ports.envoy}${authz ? '' : ' (ext_authz off: authz-service not built yet)'}`);
    const tls = createLocalTls(join(STACK, 'tls'));
    const sdsPath = join(STACK, 'envoy', 'public-tls-sds.yaml');
    mkdirSync(dirname(sdsPath), { recursive: true });
    writeFileSync(sdsPath, renderSdsConfig(tls.dir));
    await add('envoy', async (output, onSpawn) => {
      await startEnvoy({
        dir: join(STACK, 'envoy'),
        render: {
          listen: { host: '127.0.0.1', port: ports.envoy },
          adminPort: ports.envoyAdmin,
          backend: { host: '127.0.0.1', port: ports.backend },
          authz: authz ? { host: '127.0.0.1', port: ports.authzGrpc } : null,
          als: billing ? { host: '127.0.0.1', port: ports.billingGrpc } : null,
          tls: { listen: { host: '127.0.0.1', port: ports.envoyTls }, sdsPath, redirect: process.env.ENVOY_HTTPS_REDIRECT === '1' },
        },
        output,
        onSpawn,
        logLevel: 'warn',
      });
    });
    healing = true;
    // A component that died while later ones were starting is brought back now.
    for (const u of units) if (!u.proc) scheduleRestart(u);
    writeFileSync(READY, `${new Date().toISOString()}\n`);
    console.log(
      `stack: up — gateway http://127.0.0.1:${ports.envoy} and https://localhost:${ports.envoyTls} (trust ${tls.caPath})${authz ? `, management API http://127.0.0.1:${ports.authzHttp}` : ''}`,
    );
    if (authz) console.log(`stack: console http://localhost:${ports.authzHttp}/console/ (sign in with the admin token)`);
    console.log(`stack: restart policy ${policy}${policy === 'no' ? '' : ' (a component that exits is started again, with backoff)'}`);
  } catch (err) {
    console.error(`stack: failed to start: ${(err as Error).message}`);
    await stopAll(1);
  }
  // Stay in the foreground until a signal arrives.
  await new Promise(() => {});
}

/** Whether each component is up (alive and healthy), as `status` reports it. */
async function probe(c: ComponentInfo): Promise<{ pid: number | undefined; up: boolean }> {
  const pid = readPid(join(RUN, `${c.name}.pid`));
  if (!alive(pid)) return { pid: undefined, up: false };
  return { pid, up: c.health ? await httpOk(c.health) : await portOpen(c.port) };
}

async function status(): Promise<number> {
  const sup = readPid(SUPERVISOR_PID);
  const supAlive = alive(sup);
  const row = (name: string, state: string, port: string, pid: string, restarts: string, lastExit: string) =>
    console.log(`${name.padEnd(17)}${state.padEnd(12)}${port.padEnd(7)}${pid.padEnd(9)}${restarts.padEnd(10)}${lastExit}`);
  row('COMPONENT', 'STATE', 'PORT', 'PID', 'RESTARTS', 'LAST EXIT');
  row('supervisor', supAlive ? 'up' : 'down', '-', supAlive ? String(sup) : '-', '-', '-');
  let allUp = supAlive;
  for (const c of components()) {
    const { pid, up } = await probe(c);
    const known = readComponentState(RUN, c.name);
    allUp &&= up;
    const state = up ? 'up' : supAlive && (known?.state === 'restarting' || known?.state === 'starting') ? known.state : 'down';
    row(c.name, state, String(c.port), pid ? String(pid) : '-', String(known?.restarts ?? 0), describeExit(known?.lastExit ?? null));
  }
  if (external.postgres) console.log(`${'postgres'.padEnd(17)}external (DATABASE_URL)`);
  if (external.redis) console.log(`${'redis'.padEnd(17)}external (REDIS_URL)`);
  return allUp ? 0 : 3;
}

/** Stops components no supervisor owns any more (it crashed), dependents first. */
async function stopLeftovers(): Promise<void> {
  for (const c of components().reverse()) {
    const file = join(RUN, `${c.name}.pid`);
    const pid = readPid(file);
    if (alive(pid)) {
      process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + 10_000;
      while (alive(pid) && Date.now() < deadline) await sleep(100);
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    rmSync(file, { force: true });
    rmSync(componentStateFile(RUN, c.name), { force: true });
  }
}

async function down(): Promise<void> {
  const sup = readPid(SUPERVISOR_PID);
  if (alive(sup)) {
    process.kill(sup, 'SIGTERM');
    const deadline = Date.now() + 30_000;
    while (alive(sup) && Date.now() < deadline) await sleep(100);
  }
  // Anything a crashed supervisor left behind.
  await stopLeftovers();
  rmSync(SUPERVISOR_PID, { force: true });
  rmSync(READY, { force: true });
  console.log('stack: down');
}

/** `up` on a running supervisor: it starts whatever is down now; this waits until all is up. */
async function bringBack(supervisor: number): Promise<number> {
  const downNow: string[] = [];
  for (const c of components()) if (!alive(readPid(join(RUN, `${c.name}.pid`)))) downNow.push(c.name);
  if (downNow.length === 0) {
    console.log('stack: already running (./scripts/stack status; ./scripts/stack down to stop)');
    return (await status()) === 0 ? 0 : 1;
  }
  console.log(`stack: already running; starting what is down: ${downNow.join(', ')}`);
  process.kill(supervisor, 'SIGUSR2');
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && alive(supervisor)) {
    const probes = await Promise.all(components().map(probe));
    if (probes.every((p) => p.up)) break;
    await sleep(200);
  }
  return (await status()) === 0 ? 0 : 1;
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
      restartPolicy();
      const supervisor = readPid(SUPERVISOR_PID);
      if (alive(supervisor)) process.exit(await bringBack(supervisor));
      const orphans = components().filter((c) => alive(readPid(join(RUN, `${c.name}.pid`))));
      if (orphans.length > 0) {
        // Their output goes to the dead supervisor's pipes and nobody would restart them: start afresh.
        console.log(`stack: the supervisor is gone; stopping what it left running (${orphans.map((c) => c.name).join(', ')}) to start the stack again`);
        await stopLeftovers();
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
        console.error(
          `stack: no log for ${name} (components: ${components()
            .map((c) => c.name)
            .join(', ')})`,
        );
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

/** authz-service serves console/dist at /console/; a fresh checkout has none yet, so build it once. */
function ensureConsoleBuilt(): void {
  if (existsSync(join(REPO_ROOT, 'console', 'dist', 'index.html'))) return;
  console.log('stack: building the console (console/dist)');
  execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'vite.config.ts'], {
    cwd: join(REPO_ROOT, 'console'),
    stdio: 'inherit',
  });
}
