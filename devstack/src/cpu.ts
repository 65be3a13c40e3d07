import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/** Clock ticks per second, the unit of /proc/<pid>/stat's CPU times. */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

function statFields(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; everything after its closing parenthesis is
    // space-separated, starting at field 3.
    return raw.slice(raw.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** user + system CPU seconds of one process (0 once it has gone). */
function cpuSeconds(pid: number): number {
  const f = statFields(pid);
  if (!f) return 0;
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime: fields 14 and 15
}

/** The process and all its descendants (Postgres serves each connection from a child). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (!f) continue;
    const ppid = Number(f[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** A named group of processes whose CPU use is sampled together. */
export interface Watched {
  label: string;
  pids: () => number[];
}

/** Machine-wide busy time, from /proc/stat's first line. */
function machineTicks(): { busy: number; total: number } {
  const cols = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (cols[3] ?? 0) + (cols[4] ?? 0); // idle + iowait
  const total = cols.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/**
 * CPU used by each watched group between start() and stop(), in percent of one core (200% is
 * both cores of a 2-core machine), plus the whole machine's busy share.
 */
export function cpuSampler(watched: readonly Watched[]) {
  const t0 = process.hrtime.bigint();
  const m0 = machineTicks();
  const before = watched.map((w) => new Map(w.pids().map((p) => [p, cpuSeconds(p)])));
  return {
    stop(): { perProcess: Record<string, number>; machineBusyPct: number } {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const m1 = machineTicks();
      const perProcess: Record<string, number> = {};
      watched.forEach((w, i) => {
        let used = 0;
        for (const pid of w.pids()) used += cpuSeconds(pid) - (before[i]!.get(pid) ?? 0);
        perProcess[w.label] = Math.round((used / secs) * 100);
      });
      const machineBusyPct = Math.round(((m1.busy - m0.busy) / Math.max(1, m1.total - m0.total)) * 100);
      return { perProcess, machineBusyPct };
    },
  };
}
