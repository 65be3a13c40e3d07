// What the stack's supervisor knows about each component, kept in .stack/run/ so that
// `./scripts/stack status` and `down` (other processes) can find it: <name>.pid and <name>.json
// (restarts and the last exit).
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

export function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function alive(pid: number | undefined): pid is number {
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
