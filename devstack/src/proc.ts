import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createConnection } from 'node:net';
import { createServer } from 'node:net';
import type { Writable } from 'node:stream';

/** A free TCP port on loopback, chosen by the kernel. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 300): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ port, host });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Polls until `probe` resolves true; throws a message naming what never came up. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  { timeoutMs = 30_000, intervalMs = 100, child }: { timeoutMs?: number; intervalMs?: number; child?: ManagedProcess } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child?.exited) {
      throw new Error(`${what} exited (code ${child.exitCode ?? child.signal}) before becoming ready:\n${child.tail()}`);
    }
    try {
      if (await probe()) return;
    } catch {
      // not ready yet
    }
    await sleep(intervalMs);
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms${child ? `:\n${child.tail()}` : ''}`);
}

export async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  exited: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines the process wrote, for error messages. */
  tail(): string;
  stop(graceMs?: number): Promise<void>;
  kill9(): void;
  exitedPromise: Promise<void>;
}

export interface StartOptions extends Pick<SpawnOptions, 'cwd' | 'env' | 'uid' | 'gid'> {
  name: string;
  command: string;
  args: string[];
  /** Where output goes besides the in-memory tail: a stream (log file, prefixed stdout). */
  output?: Writable;
  /** Start in its own process group (so `down` can find it after the launcher exits). */
  detached?: boolean;
  /** Called as soon as the process exists, before any readiness wait (a supervisor tracks it). */
  onSpawn?: (proc: ManagedProcess) => void;
}

export function startProcess(opts: StartOptions): ManagedProcess {
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: opts.env,
    uid: opts.uid,
    gid: opts.gid,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  const lines: string[] = [];
  const remember = (chunk: Buffer) => {
    for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(l);
    if (lines.length > 60) lines.splice(0, lines.length - 60);
    opts.output?.write(chunk);
  };
  child.stdout?.on('data', remember);
  child.stderr?.on('data', remember);
  let resolveExit!: () => void;
  const exitedPromise = new Promise<void>((r) => (resolveExit = r));
  const mp: ManagedProcess = {
    name: opts.name,
    child,
    pid: child.pid ?? -1,
    exited: false,
    exitCode: null,
    signal: null,
    tail: () => lines.slice(-25).join('\n'),
    exitedPromise,
    kill9: () => {
      if (!mp.exited) child.kill('SIGKILL');
    },
    stop: async (graceMs = 10_000) => {
      if (mp.exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exitedPromise;
      clearTimeout(timer);
    },
  };
  child.on('error', (err) => {
    lines.push(`failed to start ${opts.command}: ${err.message}`);
    mp.exited = true;
    resolveExit();
  });
  child.on('exit', (code, signal) => {
    mp.exited = true;
    mp.exitCode = code;
    mp.signal = signal;
    resolveExit();
  });
  opts.onSpawn?.(mp);
  return mp;
}
