import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, freePort } from '../src/index.js';

const run = promisify(execFile);

// The developer's entry point, as a new user runs it: `./scripts/stack up --detach`, `status`,
// a request through Envoy, `down`, nothing left running. Ports and state are private to this test.
const stackDir = mkdtempSync(join(tmpdir(), 'tollgate-stack-'));
const env: NodeJS.ProcessEnv = { ...process.env, TOLLGATE_STACK_DIR: stackDir };
delete env.ADMIN_TOKEN;
const stack = (...args: string[]) => run(join(REPO_ROOT, 'scripts', 'stack'), args, { env, cwd: REPO_ROOT, timeout: 170_000 });
/** `status` even when some component is down (it then exits 3). */
const statusText = async () => (await stack('status').catch((e: { stdout: string }) => e)).stdout;

interface Row {
  state: string;
  pid: number | undefined;
  restarts: number;
  lastExit: string;
}
/** One component's row of `status`: COMPONENT STATE PORT PID RESTARTS LAST EXIT. */
function row(text: string, name: string): Row {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} in status:\n${text}`);
  const [, state, , pid, restarts, ...lastExit] = line.trim().split(/\s+/);
  return { state: state!, pid: /^\d+$/.test(pid!) ? Number(pid) : undefined, restarts: Number(restarts), lastExit: lastExit.join(' ') };
}
/** Whether a process runs: a killed one that its (adoptive) parent has not reaped yet does not. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
const COMPONENTS = ['postgres', 'redis', 'backend-hello', 'authz-service', 'billing-sidecar', 'envoy'];

/** Polls `status` until `done` holds for it (the stack's restarts take a second or two). */
async function statusUntil(what: string, done: (text: string) => boolean, timeoutMs = 90_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < deadline) {
    text = await statusText();
    if (done(text)) return text;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms; last status:\n${text}`);
}

beforeAll(async () => {
  for (const name of [
    'ENVOY_PORT',
    'ENVOY_ADMIN_PORT',
    'ENVOY_TLS_PORT',
    'BACKEND_PORT',
    'AUTHZ_HTTP_PORT',
    'AUTHZ_GRPC_PORT',
    'BILLING_GRPC_PORT',
    'BILLING_HTTP_PORT',
    'STACK_POSTGRES_PORT',
    'STACK_REDIS_PORT',
  ]) {
    env[name] = String(await freePort());
  }
});

afterAll(async () => {
  await stack('down').catch(() => {});
  rmSync(stackDir, { recursive: true, force: true });
});

describe('./scripts/stack', () => {
  it('comes up detached, reports every component, serves through Envoy, and goes down cleanly', async () => {
    const up = await stack('up', '--detach');
    expect(up.stdout).toMatch(/stack: up/);

    const again = await stack('up', '--detach');
    expect(again.stdout).toMatch(/already running/);

    const status = await stack('status');
    for (const c of ['supervisor', 'postgres', 'redis', 'backend-hello', 'authz-service', 'envoy']) {
      expect(status.stdout).toMatch(new RegExp(`^${c}\\s+up\\s`, 'm'));
    }
    const health = await fetch(`http://127.0.0.1:${env.ENVOY_PORT}/health`);
    expect(health.status).toBe(200);

    const token = statSync(join(stackDir, 'admin-token'));
    expect(token.mode & 0o777).toBe(0o600);

    for (const c of COMPONENTS) expect(row(status.stdout, c)).toMatchObject({ state: 'up', restarts: 0, lastExit: '-' });
    const pids = ['supervisor', ...COMPONENTS].map((c) => row(status.stdout, c).pid!);
    expect(pids.every((p) => Number.isInteger(p))).toBe(true);

    await stack('down');
    for (const pid of pids) {
      expect(running(pid), `process ${pid} still running after down`).toBe(false);
    }
    const after = await stack('status').catch((e: { stdout: string; code: number }) => e);
    expect((after as { code?: number }).code).toBe(3);
  });

  it('refuses an unknown STACK_RESTART, naming it, and starts nothing', async () => {
    const refused = await run(join(REPO_ROOT, 'scripts', 'stack'), ['up', '--detach'], {
      env: { ...env, STACK_RESTART: 'always-maybe' },
      cwd: REPO_ROOT,
    }).catch((e: { code: number; stderr: string }) => e);
    expect(refused).toMatchObject({ code: 2, stderr: expect.stringContaining('STACK_RESTART must be unless-stopped or no, got "always-maybe"') });
    expect(row(await statusText(), 'supervisor').state).toBe('down');
  });

  it('restarts a component that dies, and `up` brings back what is down', { timeout: 400_000 }, async () => {
    const billingHealth = `http://127.0.0.1:${env.BILLING_HTTP_PORT}/health`;
    await stack('up', '--detach');

    // The supervisor restarts a component killed under it, as Compose's `restart: unless-stopped`.
    const killed = row(await statusText(), 'billing-sidecar').pid!;
    process.kill(killed, 'SIGKILL');
    const healed = await statusUntil('billing-sidecar back up', (t) => {
      const r = row(t, 'billing-sidecar');
      return r.state === 'up' && r.pid !== killed;
    });
    expect(row(healed, 'billing-sidecar')).toMatchObject({ restarts: 1, lastExit: expect.stringMatching(/^SIGKILL /) });
    for (const c of COMPONENTS.filter((c) => c !== 'billing-sidecar')) expect(row(healed, c).restarts).toBe(0);
    expect((await fetch(billingHealth)).status).toBe(200);

    // The supervisor itself dies (and a component with it): `up` stops what is left and starts it all.
    const before = await statusText();
    const supervisor = row(before, 'supervisor').pid!;
    const survivors = COMPONENTS.filter((c) => c !== 'billing-sidecar').map((c) => row(before, c).pid!);
    process.kill(supervisor, 'SIGKILL');
    process.kill(row(before, 'billing-sidecar').pid!, 'SIGKILL');
    await statusUntil('supervisor down', (t) => row(t, 'supervisor').state === 'down');
    // With restarts off this time, so that the next step finds a component down under a live supervisor.
    env.STACK_RESTART = 'no';
    const revived = await stack('up', '--detach');
    expect(revived.stdout).toMatch(/supervisor is gone/);
    const afresh = await statusText();
    for (const c of ['supervisor', ...COMPONENTS]) expect(row(afresh, c).state, afresh).toBe('up');
    for (const pid of survivors) expect(running(pid), `old process ${pid} still running`).toBe(false);
    expect((await fetch(`http://127.0.0.1:${env.ENVOY_PORT}/health`)).status).toBe(200);

    // A live supervisor with a component down (STACK_RESTART=no leaves it so): `up` starts it.
    const sidecar = row(afresh, 'billing-sidecar').pid!;
    process.kill(sidecar, 'SIGKILL');
    const halfDead = await statusUntil('billing-sidecar down', (t) => row(t, 'billing-sidecar').state === 'down');
    expect(row(halfDead, 'supervisor').state).toBe('up');
    expect(row(halfDead, 'billing-sidecar')).toMatchObject({ restarts: 0, lastExit: expect.stringMatching(/^SIGKILL /) });
    const up = await stack('up');
    expect(up.stdout).toMatch(/starting what is down: billing-sidecar/);
    expect(row(up.stdout, 'billing-sidecar')).toMatchObject({ state: 'up', restarts: 1 });
    for (const c of ['supervisor', ...COMPONENTS]) expect(row(up.stdout, c).state, up.stdout).toBe('up');
    expect((await fetch(billingHealth)).status).toBe(200);

    await stack('down');
    delete env.STACK_RESTART;
  });
});
