import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, freePort } from '../src/index.js';

const run = promisify(execFile);
const TEST_API = join(REPO_ROOT, 'test-api.sh');

// ./test-api.sh (seed 003's walk-through) against a private local stack, as a user runs it
// after `./scripts/stack up`: ports and state of its own, the admin token from the stack dir.

describe('./test-api.sh', () => {
  it('fails at the first step, naming it, when nothing answers', async () => {
    const port = await freePort();
    const r = await run(TEST_API, [`http://127.0.0.1:${port}`, `http://127.0.0.1:${port}`], {
      env: { ...process.env, ADMIN_TOKEN: 'x'.repeat(24) },
    }).catch((e: { code: number; stderr: string }) => e);
    expect((r as { code?: number }).code).toBe(1);
    expect((r as { stderr: string }).stderr).toMatch(/FAILED at step "gateway health without a key": GET .* no answer/);
  });

  it('fails clearly without an admin token', async () => {
    const r = await run(TEST_API, [], {
      env: { ...process.env, ADMIN_TOKEN: '', TOLLGATE_STACK_DIR: mkdtempSync(join(tmpdir(), 'tollgate-none-')) },
    }).catch((e: { code: number; stderr: string }) => e);
    expect((r as { code?: number }).code).toBe(1);
    expect((r as { stderr: string }).stderr).toMatch(/ADMIN_TOKEN is not set/);
  });

  describe('against the local stack', () => {
    const stackDir = mkdtempSync(join(tmpdir(), 'tollgate-stack-'));
    const env: NodeJS.ProcessEnv = { ...process.env, TOLLGATE_STACK_DIR: stackDir };
    // The stack generates its own admin token into the stack dir; test-api.sh reads it there.
    delete env.ADMIN_TOKEN;
    delete env.DATABASE_URL;
    delete env.REDIS_URL;
    const stack = (...args: string[]) => run(join(REPO_ROOT, 'scripts', 'stack'), args, { env, cwd: REPO_ROOT, timeout: 170_000 });

    afterAll(async () => {
      await stack('down').catch(() => {});
      rmSync(stackDir, { recursive: true, force: true });
    });

    it('passes every step: keys, /hello with and without, rate limit, list, revoke, delete', async () => {
      for (const name of [
        'ENVOY_PORT',
        'ENVOY_ADMIN_PORT',
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
      await stack('up', '--detach');
      const r = await run(TEST_API, [`http://127.0.0.1:${env.ENVOY_PORT}`, `http://127.0.0.1:${env.AUTHZ_HTTP_PORT}`], {
        env,
        timeout: 120_000,
      }).catch((e: { stdout: string; stderr: string }) => {
        throw new Error(`test-api.sh failed:\n${e.stdout}\n${e.stderr}`);
      });
      expect(r.stdout).toMatch(/all steps passed/);
    }, 300_000);
  });
});
