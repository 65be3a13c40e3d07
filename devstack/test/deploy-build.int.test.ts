import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, freePort, httpOk, startProcess, waitFor } from '../src/index.js';

const run = promisify(execFile);
const PNPM = process.env.PNPM || 'pnpm';
// The root `build` script calls `pnpm` by name; scripts/test's pnpm lives in .tools/.
const buildEnv = { ...process.env, PATH: process.env.PNPM ? `${dirname(process.env.PNPM)}${delimiter}${process.env.PATH}` : process.env.PATH };

// The production path the images take (Dockerfile): `pnpm run build` compiles every package to
// dist/, `pnpm deploy --prod` makes a service's tree with production dependencies only, and
// plain `node dist/main.js` runs it — no tsx, no sources. Done here on backend-hello, without
// Docker, with the same commands.
const out = join(mkdtempSync(join(tmpdir(), 'tollgate-deploy-')), 'backend-hello');
afterAll(() => rmSync(join(out, '..'), { recursive: true, force: true }));

describe('production build (what the Dockerfile runs)', () => {
  it('builds every package, deploys backend-hello with production dependencies only, and serves from dist/', async () => {
    await run(PNPM, ['run', 'build'], { cwd: REPO_ROOT, env: buildEnv, timeout: 240_000 });
    for (const pkg of ['common', 'backend-hello', 'authz-service']) expect(existsSync(join(REPO_ROOT, pkg, 'dist')), pkg).toBe(true);
    expect(existsSync(join(REPO_ROOT, 'proto', 'dist', 'src', 'index.js'))).toBe(true);

    await run(PNPM, ['--filter', '@tollgate/backend-hello', 'deploy', '--prod', '--legacy', '--prefer-offline', '--ignore-scripts', out], {
      cwd: REPO_ROOT,
      timeout: 120_000,
    });
    expect(existsSync(join(out, 'dist', 'main.js'))).toBe(true);
    // Workspace dependencies arrive compiled ("files": ["dist"]), development tools not at all.
    expect(existsSync(join(out, 'node_modules', '@tollgate', 'common', 'dist', 'index.js'))).toBe(true);
    expect(existsSync(join(out, 'node_modules', '@tollgate', 'common', 'src'))).toBe(false);
    for (const dev of ['tsx', 'typescript', 'vitest', '@tollgate/devstack']) {
      expect(existsSync(join(out, 'node_modules', dev)), `${dev} in the production tree`).toBe(false);
    }
    expect(existsSync(join(out, 'src'))).toBe(false);

    const port = await freePort();
    const env = { PATH: process.env.PATH, BACKEND_PORT: String(port), LOG_LEVEL: 'silent', HEALTHCHECK_PORT_VAR: 'BACKEND_PORT' };
    const proc = startProcess({ name: 'backend-hello (dist)', command: process.execPath, args: ['dist/main.js'], cwd: out, env });
    try {
      await waitFor('backend-hello (dist)', () => httpOk(`http://127.0.0.1:${port}/health/live`), { child: proc, timeoutMs: 20_000 });
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      expect(res.status).toBe(200);

      // The image's HEALTHCHECK command, as Docker runs it.
      const healthcheck = join(REPO_ROOT, 'docker', 'healthcheck.mjs');
      await expect(run(process.execPath, [healthcheck], { env })).resolves.toBeDefined();
      await expect(run(process.execPath, [healthcheck, '/health'], { env })).resolves.toBeDefined();
      const missing = await run(process.execPath, [healthcheck, '/no-such-path'], { env }).catch((e: { code: number; stderr: string }) => e);
      expect((missing as { code: number }).code).toBe(1);
      expect((missing as { stderr: string }).stderr).toMatch(/answered 404/);
    } finally {
      // SIGTERM, as `docker stop` sends it: the service drains and exits 0.
      await proc.stop(15_000);
    }
    expect(proc.exitCode).toBe(0);

    const down = await run(process.execPath, [join(REPO_ROOT, 'docker', 'healthcheck.mjs')], { env }).catch((e: { code: number }) => e);
    expect((down as { code: number }).code).toBe(1);
  }, 360_000);

  it('deploys authz-service with the shared usage model compiled and no other service', async () => {
    // Runs after the build above (vitest runs a file's tests in order).
    const authz = join(out, '..', 'authz-service');
    await run(PNPM, ['--filter', '@tollgate/authz-service', 'deploy', '--prod', '--legacy', '--prefer-offline', '--ignore-scripts', authz], {
      cwd: REPO_ROOT,
      timeout: 120_000,
    });
    expect(existsSync(join(authz, 'node_modules', '@tollgate', 'usage-model', 'dist', 'index.js'))).toBe(true);
    expect(existsSync(join(authz, 'node_modules', '@tollgate', 'usage-model', 'src'))).toBe(false);
    for (const service of ['billing-sidecar', 'backend-hello']) {
      expect(existsSync(join(authz, 'node_modules', '@tollgate', service)), `${service} in authz-service's production tree`).toBe(false);
    }
    // The usage routes load from dist/ with plain node: the shared package resolves compiled.
    const load = "const m = await import('./dist/http/usage-routes.js'); if (typeof m.usageRoutes !== 'function') process.exit(1);";
    await expect(run(process.execPath, ['--input-type=module', '-e', load], { cwd: authz })).resolves.toBeDefined();
  }, 180_000);
});
