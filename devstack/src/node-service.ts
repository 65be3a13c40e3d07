// Tollgate's own services (authz-service, billing-sidecar, backend-hello) run from source the same
// way wherever a stack starts them: the local stack's supervisor, the reliability harness, benches.
import { join } from 'node:path';
import { REPO_ROOT } from './envoy-config.js';
import { httpOk, startProcess, waitFor, type ManagedProcess, type StartOptions } from './proc.js';

export interface NodeServiceOptions extends Omit<StartOptions, 'command' | 'args'> {
  /** The workspace package whose src/main.ts runs, e.g. `authz-service`. */
  pkg: string;
  /** Node's own flags, before the entry point: a heap cap, --cpu-prof. */
  nodeFlags?: string[];
  /** Pins the process to these CPUs (`taskset -c`, e.g. "0" or "0,1"); taskset execs Node, so the pid watched is Node's. */
  cpus?: string;
}

/** Starts `<pkg>/src/main.ts` with this Node, through tsx, on the workspace's source condition. */
export function startNodeService({ pkg, nodeFlags = [], cpus, ...opts }: NodeServiceOptions): ManagedProcess {
  const node = [process.execPath, ...nodeFlags, '--conditions=source', '--import', 'tsx', join(REPO_ROOT, pkg, 'src', 'main.ts')];
  const argv = cpus ? ['taskset', '-c', cpus, ...node] : node;
  return startProcess({ ...opts, command: argv[0]!, args: argv.slice(1) });
}

/** Resolves once the service at `baseUrl` answers /health/live; throws (with its last lines) if it exits first. */
export function waitForLive(proc: ManagedProcess, baseUrl: string): Promise<void> {
  return waitFor(proc.name, () => httpOk(`${baseUrl}/health/live`), { child: proc, timeoutMs: 60_000 });
}
