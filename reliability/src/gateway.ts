// A whole Tollgate gateway on loopback, every part its own OS process, so any one of them can be
// killed with SIGKILL and started again on the same ports: Postgres, Redis, backend-hello, two
// authz-service replicas behind Envoy, billing-sidecar and Envoy itself. Every line each process
// writes is kept (the secrets test searches them).
import { createWriteStream, mkdirSync, readFileSync, type WriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  REPO_ROOT,
  ensureDatabase,
  freePort,
  sleep,
  startEnvoy,
  startPostgres,
  startNodeService,
  startRedis,
  waitForLive,
  type ManagedProcess,
  type RunningEnvoy,
} from '@tollgate/devstack';

export type Component = 'postgres' | 'redis' | 'backend' | 'authz-a' | 'authz-b' | 'billing' | 'envoy';
export const COMPONENTS: Component[] = ['postgres', 'redis', 'backend', 'authz-a', 'authz-b', 'billing', 'envoy'];

export interface GatewayOptions {
  /** Folder for data, rendered config, logs. */
  dir: string;
  /** Extra environment for both authz-service replicas (e.g. service tokens, the vault). */
  authzEnv?: Record<string, string>;
  billingEnv?: Record<string, string>;
  /** Log level of our services; `debug` logs the most, which the secrets test wants. */
  logLevel?: string;
}

interface Ports {
  postgres: number;
  redis: number;
  backend: number;
  authzGrpc: [number, number];
  authzHttp: [number, number];
  billingGrpc: number;
  billingHttp: number;
  envoy: number;
  envoyAdmin: number;
}

/** Captures a process's output: kept in memory line by line and written to a file. */
class LogSink {
  readonly lines: string[] = [];
  private pending = '';
  private readonly file: WriteStream;
  constructor(path: string) {
    this.file = createWriteStream(path, { flags: 'a' });
  }
  stream(): Writable {
    return new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        this.file.write(chunk);
        this.pending += chunk.toString('utf8');
        const parts = this.pending.split('\n');
        this.pending = parts.pop() ?? '';
        for (const l of parts) if (l) this.lines.push(l);
        cb();
      },
    });
  }
  close(): void {
    if (this.pending) this.lines.push(this.pending);
    this.pending = '';
    this.file.end();
  }
}

export class Gateway {
  readonly secrets = {
    adminToken: `adm_${randomBytes(18).toString('base64url')}`,
    keyHashSecret: randomBytes(32).toString('hex'),
  };
  readonly redisPrefix = 'tg_rel:';
  readonly procs = new Map<Component, ManagedProcess>();
  readonly logs = new Map<Component, LogSink>();
  /** Processes this harness killed on purpose (and has not restarted yet). */
  readonly killed = new Set<Component>();
  envoy!: RunningEnvoy;
  databaseUrl!: string;
  pgAdminUrl!: string;
  private ports!: Ports;
  private readonly logDir: string;

  constructor(readonly opts: GatewayOptions) {
    this.logDir = join(opts.dir, 'logs');
    mkdirSync(this.logDir, { recursive: true });
  }

  get url(): string {
    return `http://127.0.0.1:${this.ports.envoy}`;
  }
  get envoyAdminUrl(): string {
    return `http://127.0.0.1:${this.ports.envoyAdmin}`;
  }
  get redisUrl(): string {
    return `redis://127.0.0.1:${this.ports.redis}`;
  }
  get accessLogPath(): string {
    return join(this.opts.dir, 'envoy', 'access.log');
  }
  authzHttpUrl(i: 0 | 1): string {
    return `http://127.0.0.1:${this.ports.authzHttp[i]}`;
  }
  get billingHttpUrl(): string {
    return `http://127.0.0.1:${this.ports.billingHttp}`;
  }
  get backendUrl(): string {
    return `http://127.0.0.1:${this.ports.backend}`;
  }

  /** The environment the authz-service replicas run with (the same for both but their ports). */
  authzEnv(i: 0 | 1): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      DATABASE_URL: this.databaseUrl,
      REDIS_URL: this.redisUrl,
      REDIS_KEY_PREFIX: this.redisPrefix,
      KEY_HASH_SECRETS: this.secrets.keyHashSecret,
      ADMIN_TOKEN: this.secrets.adminToken,
      AUTHZ_HOST: '127.0.0.1',
      AUTHZ_GRPC_PORT: String(this.ports.authzGrpc[i]),
      AUTHZ_HTTP_PORT: String(this.ports.authzHttp[i]),
      LOG_LEVEL: this.opts.logLevel ?? 'info',
      // Off unless the run's environment sets it: the load here sends unknown keys from
      // 127.0.0.1 on purpose, and bench:flood measures the key cache, not the limit.
      UNAUTHENTICATED_REFUSALS_PER_MINUTE_PER_ADDRESS: process.env.UNAUTHENTICATED_REFUSALS_PER_MINUTE_PER_ADDRESS ?? '0',
      ...this.opts.authzEnv,
    };
  }

  async start(): Promise<void> {
    this.ports = {
      postgres: await freePort(),
      redis: await freePort(),
      backend: await freePort(),
      authzGrpc: [await freePort(), await freePort()],
      authzHttp: [await freePort(), await freePort()],
      billingGrpc: await freePort(),
      billingHttp: await freePort(),
      envoy: await freePort(),
      envoyAdmin: await freePort(),
    };
    try {
      await this.startComponent('postgres');
      await this.startComponent('redis');
      await this.startComponent('backend');
      // One replica first: it applies the migrations the other then finds done.
      await this.startComponent('authz-a');
      await this.startComponent('authz-b');
      await this.startComponent('billing');
      await this.startComponent('envoy');
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private sink(name: Component): LogSink {
    let s = this.logs.get(name);
    if (!s) {
      s = new LogSink(join(this.logDir, `${name}.log`));
      this.logs.set(name, s);
    }
    return s;
  }

  private node(name: Component, pkg: string, env: NodeJS.ProcessEnv, nodeFlags: string[] = []): ManagedProcess {
    return startNodeService({ name, pkg, nodeFlags, cwd: REPO_ROOT, env, output: this.sink(name).stream() });
  }

  /** Starts one component on its ports (again, after a kill: same ports, same data). */
  async startComponent(name: Component): Promise<void> {
    const p = this.ports;
    let proc: ManagedProcess;
    switch (name) {
      case 'postgres': {
        // After a SIGKILL of the postmaster its backends exit on their own a moment later;
        // until they have, a new postmaster refuses the data folder. Retry briefly.
        let last: unknown;
        for (let attempt = 0; attempt < 20; attempt++) {
          try {
            // Durable settings (not the test suite's fsync/synchronous_commit off): with
            // synchronous_commit off a killed Postgres forgets commits it acknowledged, which
            // is a database that loses data, not a fault Tollgate can be asked to survive.
            const pg = await startPostgres({ dir: join(this.opts.dir, 'pg'), port: p.postgres, ephemeral: false, output: this.sink(name).stream() });
            proc = pg.process;
            this.pgAdminUrl = pg.adminUrl;
            if (!this.databaseUrl) {
              await ensureDatabase(pg.adminUrl, 'tollgate');
              this.databaseUrl = pg.urlFor('tollgate');
            }
            last = undefined;
            break;
          } catch (err) {
            last = err;
            await sleep(250);
          }
        }
        if (last) throw last;
        break;
      }
      case 'redis':
        proc = (await startRedis({ dir: join(this.opts.dir, 'redis'), port: p.redis, output: this.sink(name).stream() })).process;
        break;
      case 'backend':
        proc = this.node(name, 'backend-hello', {
          PATH: process.env.PATH,
          BACKEND_HOST: '127.0.0.1',
          BACKEND_PORT: String(p.backend),
          LOG_LEVEL: this.opts.logLevel ?? 'info',
        });
        await waitForLive(proc, this.backendUrl);
        break;
      case 'authz-a':
      case 'authz-b': {
        const i = name === 'authz-a' ? 0 : 1;
        proc = this.node(name, 'authz-service', this.authzEnv(i));
        await waitForLive(proc, this.authzHttpUrl(i));
        break;
      }
      case 'billing':
        // The heap cap the stack and the image run it with: an RSS leak would show as a crash.
        proc = this.node(
          name,
          'billing-sidecar',
          {
            PATH: process.env.PATH,
            DATABASE_URL: this.databaseUrl,
            BILLING_HOST: '127.0.0.1',
            BILLING_GRPC_PORT: String(p.billingGrpc),
            BILLING_HTTP_PORT: String(p.billingHttp),
            ENVOY_ACCESS_LOG_PATH: this.accessLogPath,
            ENVOY_ADMIN_URL: this.envoyAdminUrl,
            ACCESS_LOG_POLL_INTERVAL_MS: '100',
            LOG_LEVEL: this.opts.logLevel ?? 'info',
            ...this.opts.billingEnv,
          },
          ['--max-old-space-size=128'],
        );
        await waitForLive(proc, this.billingHttpUrl);
        break;
      case 'envoy':
        this.envoy = await startEnvoy({
          dir: join(this.opts.dir, 'envoy'),
          render: {
            listen: { host: '127.0.0.1', port: p.envoy },
            adminPort: p.envoyAdmin,
            backend: { host: '127.0.0.1', port: p.backend },
            authz: p.authzGrpc.map((port) => ({ host: '127.0.0.1', port })),
            als: { host: '127.0.0.1', port: p.billingGrpc },
            accessLogPath: this.accessLogPath,
          },
          output: this.sink(name).stream(),
          logLevel: 'warn',
        });
        proc = this.envoy.process;
        break;
    }
    this.procs.set(name, proc!);
    this.killed.delete(name);
  }

  /** SIGKILL, and wait until the process is gone. */
  async kill9(name: Component): Promise<void> {
    const proc = this.procs.get(name);
    if (!proc) throw new Error(`${name} is not running`);
    this.killed.add(name);
    proc.kill9();
    await proc.exitedPromise;
  }

  restart(name: Component): Promise<void> {
    return this.startComponent(name);
  }

  /** Components that exited without this harness killing them. */
  crashed(): { name: Component; code: number | null; signal: string | null; tail: string }[] {
    return [...this.procs.entries()]
      .filter(([name, p]) => p.exited && !this.killed.has(name))
      .map(([name, p]) => ({ name, code: p.exitCode, signal: p.signal, tail: p.tail() }));
  }

  /** Resident memory of a component's main process, in MiB. */
  rssMiB(name: Component): number {
    const proc = this.procs.get(name);
    if (!proc || proc.exited) return 0;
    const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return kb / 1024;
  }

  /** Envoy's counters whose names match, from its admin port (since its last start). */
  async envoyStats(match: RegExp): Promise<Record<string, number>> {
    const res = await fetch(`${this.envoyAdminUrl}/stats?format=json`);
    const body = (await res.json()) as { stats: { name: string; value?: number }[] };
    return Object.fromEntries(body.stats.filter((s) => s.value !== undefined && match.test(s.name)).map((s) => [s.name, s.value!]));
  }

  /** Every line every process wrote so far. */
  allLogLines(): { component: Component; line: string }[] {
    return [...this.logs.entries()].flatMap(([component, s]) => s.lines.map((line) => ({ component, line })));
  }

  async stop(): Promise<void> {
    // Envoy first (no new traffic), the stores last.
    for (const name of [...COMPONENTS].reverse()) {
      const p = this.procs.get(name);
      if (p && !p.exited) await p.stop(10_000).catch(() => {});
    }
    for (const s of this.logs.values()) s.close();
  }
}
