// How Envoy + Tollgate's throughput grows with authz-service processes (issue 20, item 3):
// --scale names the process counts to measure, --authz-cpus the cores they are pinned to.

/** Parses --scale: authz-service process counts, e.g. "1,2", each from 1 to `max`, ascending. */
export function parseScale(raw: string, max = 8): number[] | string {
  const counts: number[] = [];
  for (const part of raw.split(',').map((p) => p.trim())) {
    const n = Number(part);
    if (part === '' || !Number.isInteger(n) || n < 1 || n > max) return `--scale: each entry must be a whole number from 1 to ${max} (got "${part}")`;
    counts.push(n);
  }
  if (new Set(counts).size !== counts.length) return `--scale: "${raw}" names a process count twice`;
  return counts.sort((a, b) => a - b);
}

/**
 * Parses --authz-cpus: the CPUs authz-service processes are pinned to (taskset -c), one entry
 * per process in turn, e.g. "0,1" pins the first to CPU 0 and the second to CPU 1; an entry may
 * be a range ("0-1": that process may run on either). Entries are reused round-robin when there
 * are more processes than entries.
 */
export function parseCpuList(raw: string, cpuCount: number): string[] | string {
  const entries = raw.split(',').map((p) => p.trim());
  for (const e of entries) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(e);
    const lo = Number(m?.[1]);
    const hi = Number(m?.[2] ?? m?.[1]);
    if (!m || lo > hi || hi >= cpuCount) return `--authz-cpus: each entry must be a CPU or a range of CPUs from 0 to ${cpuCount - 1} (got "${e}")`;
  }
  return entries;
}

/** The taskset CPU list for authz-service process `index` (0-based), or null when not pinned. */
export const cpusFor = (index: number, list: readonly string[] | null): string | null => (list?.length ? list[index % list.length]! : null);

/** What the scale table reads of each process count's summary. */
interface ScalePoint {
  processes: number;
  perSecond: number;
  perSecondRange: number[];
  p99: number;
  authzCpuPct: number;
  authzUsPerRequest: number;
  machineBusyPct: number;
}

/** Rows of the scale table: throughput per process count, and as a multiple of the fewest's. */
export function scaleRows(points: readonly ScalePoint[]): string[][] {
  const base = points[0]?.perSecond ?? 0;
  return points.map((p) => [
    String(p.processes),
    p.perSecond.toFixed(0),
    `${p.perSecondRange[0]!.toFixed(0)}–${p.perSecondRange[1]!.toFixed(0)}`,
    base > 0 ? (p.perSecond / base).toFixed(2) : '–',
    p.p99.toFixed(3),
    `${p.authzCpuPct}%`,
    String(p.authzUsPerRequest),
    `${p.machineBusyPct}%`,
  ]);
}

export const SCALE_HEAD = ['authz processes', 'req/s', 'range (runs)', '× fewest', 'p99 ms', 'authz CPU', 'authz µs/req', 'machine busy'];
