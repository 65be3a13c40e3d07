import { spawn } from 'node:child_process';

export interface LoadResult {
  seconds: number;
  ok: number;
  /** Non-2xx answers plus transport errors (refused, reset, timed out). */
  errors: number;
  errorKinds: Record<string, number>;
  perSecond: number;
  latencyMs: { p50: number; p99: number; 'p99.9': number };
}

interface OhaJson {
  summary: { total: number };
  latencyPercentiles: Record<string, number | null>;
  statusCodeDistribution: Record<string, number>;
  errorDistribution: Record<string, number>;
}

export interface OhaRun {
  bin: string;
  url: string;
  headers: Record<string, string>;
  seconds: number;
  concurrency: number;
  threads?: number;
  /** Requests/s across all connections; without it, as many as the connections carry. */
  rate?: number;
  onStart?: (pid: number) => void;
}

/** oha's command line for one run (its JSON report on stdout, no terminal UI). */
export function ohaArgs(opts: Omit<OhaRun, 'bin' | 'onStart'>): string[] {
  const args = ['-z', `${opts.seconds}s`, '-c', String(opts.concurrency), '-w', '--no-tui', '--output-format', 'json', '-t', '5s'];
  if (opts.threads) args.push('--worker-threads', String(opts.threads));
  // A fixed rate measured from when each request was due, not from when a free connection sent
  // it: otherwise a stall delays the requests behind it and hides their wait (coordinated omission).
  if (opts.rate) args.push('-q', String(opts.rate), '--latency-correction');
  for (const [k, v] of Object.entries(opts.headers)) args.push('-H', `${k}: ${v}`);
  args.push(opts.url);
  return args;
}

/**
 * One fixed-concurrency, fixed-duration run of oha. Bounded twice: oha stops sending at the
 * deadline (and waits for requests in flight, so none is counted as an error for being cut
 * off), and the process is killed if it outlives the deadline by 30 s.
 */
export function runOha(opts: OhaRun): Promise<LoadResult> {
  const args = ohaArgs(opts);
  return new Promise((resolve, reject) => {
    const child = spawn(opts.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid) opts.onStart?.(child.pid);
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const killer = setTimeout(() => child.kill('SIGKILL'), (opts.seconds + 30) * 1000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      if (code !== 0) return reject(new Error(`oha exited with ${code ?? signal}: ${err.trim().slice(-500)}`));
      try {
        resolve(parseOha(JSON.parse(out) as OhaJson));
      } catch (e) {
        reject(new Error(`could not read oha's JSON output: ${(e as Error).message}`));
      }
    });
  });
}

export function parseOha(j: OhaJson): LoadResult {
  let ok = 0;
  let errors = 0;
  const errorKinds: Record<string, number> = {};
  for (const [status, n] of Object.entries(j.statusCodeDistribution ?? {})) {
    if (status.startsWith('2')) ok += n;
    else {
      errors += n;
      errorKinds[`HTTP ${status}`] = n;
    }
  }
  for (const [kind, n] of Object.entries(j.errorDistribution ?? {})) {
    errors += n;
    errorKinds[kind] = n;
  }
  const ms = (p: string) => Number(((j.latencyPercentiles[p] ?? NaN) * 1000).toFixed(3));
  return {
    seconds: j.summary.total,
    ok,
    errors,
    errorKinds,
    perSecond: ok / j.summary.total,
    latencyMs: { p50: ms('p50'), p99: ms('p99'), 'p99.9': ms('p99.9') },
  };
}
