import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, freePort } from '../src/index.js';

const run = promisify(execFile);

// The developer's entry point, as a new user runs it: `./scripts/stack up --detach`, `status`,
// a request through Envoy, `down`, nothing left running. Ports and state are private to this test.
const stackDir = mkdtempSync(join(tmpdir(), 'tollgate-stack-'));
const env: NodeJS.ProcessEnv = { ...process.env, TOLLGATE_STACK_DIR: stackDir };
delete env.ADMIN_TOKEN;
const stack = (...args: string[]) =>
  run(join(REPO_ROOT, 'scripts', 'stack'), args, { env, cwd: REPO_ROOT, timeout: 170_000 });

afterAll(async () => {
  await stack('down').catch(() => {});
  rmSync(stackDir, { recursive: true, force: true });
});

describe('./scripts/stack', () => {
  it('comes up detached, reports every component, serves through Envoy, and goes down cleanly', async () => {
    for (const name of ['ENVOY_PORT', 'ENVOY_ADMIN_PORT', 'BACKEND_PORT', 'AUTHZ_HTTP_PORT', 'AUTHZ_GRPC_PORT', 'BILLING_GRPC_PORT', 'BILLING_HTTP_PORT', 'STACK_POSTGRES_PORT', 'STACK_REDIS_PORT']) {
      env[name] = String(await freePort());
    }
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

    const pids = status.stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/).pop())
      .filter((p): p is string => !!p && /^\d+$/.test(p))
      .map(Number);
    expect(pids.length).toBeGreaterThanOrEqual(5);

    await stack('down');
    for (const pid of pids) {
      expect(() => process.kill(pid, 0), `process ${pid} still running after down`).toThrow();
    }
    const after = await stack('status').catch((e: { stdout: string; code: number }) => e);
    expect((after as { code?: number }).code).toBe(3);
  });
});
