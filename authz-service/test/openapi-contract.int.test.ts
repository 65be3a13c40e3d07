import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO_ROOT } from '@tollgate/devstack';
import { migrateBilling } from '@tollgate/usage-model';
import { startTestApi, type TestApi } from './api-helpers.js';
import { TEST_ADMIN_TOKEN } from './helpers.js';

// The management API against its own /openapi.json, with the admin token: schemathesis (PyPI;
// scripts/test installs it into .venv/) generates valid and invalid calls for every operation,
// undeclared methods included, and checks each answer against the document (status, headers,
// body schema). Rules the document can only state in words are listed, per operation, in
// schemathesis.toml. A fixed seed and a small example count keep the run short and repeatable.
const SCHEMATHESIS = process.env.SCHEMATHESIS_BIN || join(REPO_ROOT, '.venv/bin/schemathesis');
const CONFIG = join(import.meta.dirname, 'schemathesis.toml');
const infra = inject('infra');
let api: TestApi;

beforeAll(async () => {
  if (!existsSync(SCHEMATHESIS)) {
    throw new Error(`schemathesis is missing (looked for ${SCHEMATHESIS}): run ./scripts/test, which installs it into .venv/, or set SCHEMATHESIS_BIN`);
  }
  api = await startTestApi(infra, 'contract', {
    GATEWAY_JWT_SECRET: 'ct:' + 'c'.repeat(40),
    VAULT_MASTER_KEYS: `mk:${Buffer.alloc(32, 7).toString('base64')}`,
  });
  await migrateBilling(api.deps.pool);
});

afterAll(async () => {
  await api?.stop();
});

function schemathesis(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(SCHEMATHESIS, args, { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, output: `${stdout}\n${stderr}` });
    });
  });
}

describe('the management API honours /openapi.json (schemathesis, admin token)', () => {
  it('finds no failure', async () => {
    const { code, output } = await schemathesis([
      '--config-file',
      CONFIG,
      'run',
      `${api.url}/openapi.json`,
      '--header',
      `Authorization: Bearer ${TEST_ADMIN_TOKEN}`,
      '--seed',
      '20261202',
      '--max-examples',
      '8',
      '--max-time',
      '80',
      '--workers',
      '1',
      '--generation-database',
      'none',
      '--no-color',
    ]);
    // The whole report on failure: each failure names the operation, the check and a curl line.
    expect(code, output.slice(output.indexOf('FAILURES') >= 0 ? output.indexOf('FAILURES') - 40 : 0)).toBe(0);
  }, 180_000);
});
