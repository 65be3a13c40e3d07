// What the stack's supervisor knows about each component, kept in .stack/run/<name>.json so that
// `./scripts/stack status` (another process) can show restarts and the last exit.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ComponentExit {
  code: number | null;
  signal: string | null;
  /** Epoch milliseconds. */
  at: number;
}

export interface ComponentState {
  /** starting → up; exited → restarting (after a delay) → starting; exited stays when restarts are off. */
  state: 'starting' | 'up' | 'exited' | 'restarting';
  restarts: number;
  lastExit: ComponentExit | null;
}

const file = (runDir: string, name: string) => join(runDir, `${name}.json`);

export function writeComponentState(runDir: string, name: string, state: ComponentState): void {
  // Written aside and renamed, so a concurrent `status` never reads half a file.
  const path = file(runDir, name);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(state)}\n`);
  renameSync(`${path}.tmp`, path);
}

export function readComponentState(runDir: string, name: string): ComponentState | undefined {
  try {
    return JSON.parse(readFileSync(file(runDir, name), 'utf8')) as ComponentState;
  } catch {
    return undefined;
  }
}

export function componentStateFile(runDir: string, name: string): string {
  return file(runDir, name);
}

/** "SIGKILL 12s ago", "exit 1 3m ago": how and when a component last exited. */
export function describeExit(exit: ComponentExit | null, now = Date.now()): string {
  if (!exit) return '-';
  const how = exit.signal ?? `exit ${exit.code}`;
  const s = Math.max(0, Math.round((now - exit.at) / 1000));
  const ago = s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
  return `${how} ${ago} ago`;
}
