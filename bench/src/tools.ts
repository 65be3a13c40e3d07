import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '@tollgate/devstack';

/** The programs the gateway benchmark drives, with the variable that overrides where each is. */
const TOOLS = {
  oha: 'OHA_BIN',
  'opa-envoy-plugin': 'OPA_ENVOY_BIN',
  ratelimit: 'RATELIMIT_BIN',
  'noop-authz': 'NOOP_AUTHZ_BIN',
} as const;

export type BenchTool = keyof typeof TOOLS;

/** Where a benchmark tool is: its variable, else .tools/bin/<name>; null when absent. */
export function findBenchTool(name: BenchTool): string | null {
  const fromEnv = process.env[TOOLS[name]];
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : null;
  const local = join(REPO_ROOT, '.tools', 'bin', name);
  return existsSync(local) ? local : null;
}

export function requireBenchTool(name: BenchTool): string {
  const path = findBenchTool(name);
  if (!path) {
    throw new Error(`${name} not found: run \`pnpm bench:gateway\` (scripts/bench-gateway installs or builds it into .tools/bin), or set ${TOOLS[name]}.`);
  }
  return path;
}
