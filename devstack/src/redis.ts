import { mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import type { Writable } from 'node:stream';
import { portOpen, startProcess, waitFor, type ManagedProcess } from './proc.js';

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
}): Promise<RunningRedis> {
  mkdirSync(opts.dir, { recursive: true });
  const args = [
    '--port', String(opts.port),
    '--bind', '127.0.0.1',
    '--protected-mode', 'yes',
    '--dir', opts.dir,
    '--daemonize', 'no',
    '--save', opts.persistent ? '60 1' : '',
    '--appendonly', 'no',
    '--loglevel', 'warning',
    ...(opts.extraArgs ?? []),
  ];
  const proc = startProcess({ name: 'redis', command: findRedisServer(), args, output: opts.output, detached: opts.detached });
  await waitFor('redis', () => portOpen(opts.port), { child: proc, timeoutMs: 15_000 });
  return { process: proc, port: opts.port, url: `redis://127.0.0.1:${opts.port}` };
}
