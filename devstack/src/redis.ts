import { mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import type { Writable } from 'node:stream';
import { portOpen, startProcess, waitFor, type ManagedProcess, type StartOptions } from './proc.js';

export function findRedisServer(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v redis-server']).toString().trim();
  } catch {
    throw new Error('redis-server not found: install the Debian package `redis-server`, or set REDIS_URL to a running server.');
  }
}

export interface RunningRedis {
  process: ManagedProcess;
  port: number;
  url: string;
}

export async function startRedis(opts: {
  dir: string;
  port: number;
  persistent?: boolean;
  output?: Writable;
  detached?: boolean;
  extraArgs?: string[];
  onSpawn?: StartOptions['onSpawn'];
}): Promise<RunningRedis> {
  mkdirSync(opts.dir, { recursive: true });
  const args = [
    '--port',
    String(opts.port),
    '--bind',
    '127.0.0.1',
    '--protected-mode',
    'yes',
    '--dir',
    opts.dir,
    '--daemonize',
    'no',
    '--save',
    opts.persistent ? '60 1' : '',
    '--appendonly',
    'no',
    '--loglevel',
    'warning',
    ...(opts.extraArgs ?? []),
  ];
  const proc = startProcess({ name: 'redis', command: findRedisServer(), args, output: opts.output, detached: opts.detached, onSpawn: opts.onSpawn });
  await waitFor('redis', () => portOpen(opts.port), { child: proc, timeoutMs: 15_000 });
  return { process: proc, port: opts.port, url: `redis://127.0.0.1:${opts.port}` };
}

export interface RunningRedisCluster {
  nodes: RunningRedis[];
  /** host:port of every master, for a cluster client's seed list. */
  seeds: { host: string; port: number }[];
  stop(): Promise<void>;
}

/** A local Redis Cluster of `masters` nodes (no replicas), for testing slot-correctness. */
export async function startRedisCluster(opts: { dir: string; ports: number[] }): Promise<RunningRedisCluster> {
  const nodes: RunningRedis[] = [];
  try {
    for (const port of opts.ports) {
      nodes.push(
        await startRedis({
          dir: `${opts.dir}/${port}`,
          port,
          extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', `${opts.dir}/${port}/nodes.conf`, '--cluster-node-timeout', '2000'],
        }),
      );
    }
    const cli = execFileSync('sh', ['-c', 'command -v redis-cli']).toString().trim();
    execFileSync(cli, ['--cluster', 'create', ...opts.ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
      stdio: 'pipe',
    });
    // Wait until every node agrees the cluster is up.
    for (const port of opts.ports) {
      await waitFor(
        `redis cluster node ${port}`,
        async () => {
          const info = execFileSync(cli, ['-p', String(port), 'cluster', 'info']).toString();
          return info.includes('cluster_state:ok');
        },
        { timeoutMs: 20_000 },
      );
    }
  } catch (err) {
    for (const n of nodes) await n.process.stop();
    throw err;
  }
  return {
    nodes,
    seeds: opts.ports.map((port) => ({ host: '127.0.0.1', port })),
    stop: async () => {
      for (const n of nodes) await n.process.stop();
    },
  };
}

/** The pid of the Redis server a client talks to (from INFO server), to watch or renice it. */
export async function redisServerPid(client: { info(section: 'server'): Promise<string> }): Promise<number> {
  const pid = Number(/process_id:(\d+)/.exec(await client.info('server'))?.[1]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error('Redis INFO server did not give a process_id');
  return pid;
}
