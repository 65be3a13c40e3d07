// The local stack's supervisor: starts every component in dependency order, restarts one that
// dies (with backoff, STACK_RESTART), starts again what is down on SIGUSR2 (`up` on a running
// stack) and stops all on SIGTERM (`down`). What it knows it writes to .stack/run/ (stack-state.ts).
import { execFileSync } from 'node:child_process';
import { chmodSync, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { Transform, type Writable } from 'node:stream';
import {
  REPO_ROOT,
  createLocalTls,
  renderSdsConfig,
  RestartBackoff,
  ensureDatabase,
  startEnvoy,
  startPostgres,
  startNodeService,
  startRedis,
  waitForLive,
  type ManagedProcess,
} from '@tollgate/devstack';
import { LOGS, READY, RUN, STACK, SUPERVISOR_PID, external, hasService, ports, restartPolicy } from './stack-config.js';
import { componentStateFile, writeComponentState, type ComponentExit, type ComponentState } from './stack-state.js';

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

export async function supervise(): Promise<void> {
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
    const startService = async (pkg: string, port: number) => {
      console.log(`stack: starting ${pkg}`);
      await add(pkg, async (output, onSpawn) => {
        const proc = startNodeService({
          name: pkg,
          pkg,
          // The sidecar's heap is capped so its RSS stays inside its budget (docs/benchmarks.md).
          nodeFlags: pkg === 'billing-sidecar' ? ['--max-old-space-size=128'] : [],
          cwd: join(REPO_ROOT, pkg),
          env: serviceEnv,
          output,
          onSpawn,
        });
        await waitForLive(proc, `http://127.0.0.1:${port}`);
      });
    };
    await startService('backend-hello', ports.backend);
    const authz = hasService('authz-service');
    const billing = hasService('billing-sidecar');
    if (authz) await startService('authz-service', ports.authzHttp);
    if (billing) await startService('billing-sidecar', ports.billingHttp);
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

/** authz-service serves console/dist at /console/; a fresh checkout has none yet, so build it once. */
function ensureConsoleBuilt(): void {
  if (existsSync(join(REPO_ROOT, 'console', 'dist', 'index.html'))) return;
  console.log('stack: building the console (console/dist)');
  execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'vite.config.ts'], {
    cwd: join(REPO_ROOT, 'console'),
    stdio: 'inherit',
  });
}
