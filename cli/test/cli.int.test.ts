import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO_ROOT, freePort } from '@tollgate/devstack';
import { startTestApi, type TestApi } from '../../authz-service/test/api-helpers.js';
import { TEST_ADMIN_TOKEN } from '../../authz-service/test/helpers.js';
import { run } from '../src/program.js';
import { migrateBilling } from '@tollgate/usage-model';

// `tollgate` against a real management API on a free port. The real process (node + tsx) is
// spawned where the process itself matters (stdout/stderr, exit codes, env); the long lifecycle
// walk calls the same run() in-process, since each spawn costs a second of CPU on a shared box.
const execFileAsync = promisify(execFile);
const infra = inject('infra');
let api: TestApi;

beforeAll(async () => {
  api = await startTestApi(infra, 'cli', {
    GATEWAY_JWT_SECRET: 'cli:' + 'c'.repeat(40),
    VAULT_MASTER_KEYS: `mk:${Buffer.alloc(32, 3).toString('base64')}`,
    PLANS: JSON.stringify([
      { name: 'starter', rate_limit_per_minute: 60, stripe_price: 'price_cli_starter' },
      { name: 'pro', rate_limit_per_minute: 600, monthly_quota: 100000, scopes: ['read', 'write'], stripe_lookup_key: 'pro_monthly' },
    ]),
  });
  // The usage tables belong to billing-sidecar; create them as its start would.
  await migrateBilling(api.deps.pool);
});

afterAll(async () => {
  await api?.stop();
});

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** run() in this process, with the environment the spawned CLI would see. */
async function tollgateInProcess(args: string[]): Promise<Ran> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    env: { TOLLGATE_API_URL: api.url, TOLLGATE_TOKEN: TEST_ADMIN_TOKEN },
    output: { out: (t) => (stdout += `${t}\n`), err: (t) => (stderr += `${t}\n`) },
  });
  return { code, stdout, stderr };
}

async function tollgate(args: string[], env: Record<string, string | undefined> = {}): Promise<Ran> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, TOLLGATE_API_URL: api.url, TOLLGATE_TOKEN: TEST_ADMIN_TOKEN, ADMIN_TOKEN: undefined, ...env };
  for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
  try {
    const r = await execFileAsync(process.execPath, ['--conditions=source', '--import', 'tsx', join(REPO_ROOT, 'cli', 'src', 'main.ts'), ...args], {
      cwd: REPO_ROOT,
      env: childEnv,
      timeout: 30_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('tollgate keys', () => {
  it('runs a key through its life with --json: create, get, list, update, extend, rotate, revoke, delete', async () => {
    const created = await tollgate([
      '--json',
      'keys',
      'create',
      '--user',
      'cli-user',
      '--name',
      'from the CLI',
      '--rate-per-minute',
      '100',
      '--rate-per-day',
      '10000',
      '--scope',
      'read',
      '--scope',
      'write:/uploads/',
    ]);
    expect(created.code).toBe(0);
    const key = JSON.parse(created.stdout);
    expect(key).toMatchObject({
      user_id: 'cli-user',
      name: 'from the CLI',
      rate_limit_per_minute: 100,
      scopes: ['read', 'write:/uploads/'],
      permission_set: null,
    });
    expect(key.key).toMatch(/^sk_/);

    const got = JSON.parse((await tollgateInProcess(['--json', 'keys', 'get', key.id])).stdout);
    expect(got.id).toBe(key.id);
    expect(got.key).toBeUndefined();

    const list = await tollgateInProcess(['keys', 'list', 'cli-user', '--json']);
    expect(JSON.parse(list.stdout)).toMatchObject({ object: 'list', data: [expect.objectContaining({ id: key.id })] });

    const update = await tollgateInProcess(['--json', 'keys', 'update', key.id, '--name', 'renamed', '--rate-per-day', 'none', '--active', 'false']);
    expect(update.stderr).toBe('');
    const updated = JSON.parse(update.stdout);
    expect(updated).toMatchObject({ name: 'renamed', rate_limit_per_day: null, status: 'inactive' });

    const extended = JSON.parse((await tollgateInProcess(['--json', 'keys', 'extend', key.id, '--days', '10'])).stdout);
    expect(new Date(extended.expires_at).getTime()).toBeGreaterThan(Date.now() + 9 * 86_400_000);

    const rotated = JSON.parse((await tollgateInProcess(['--json', 'keys', 'rotate', key.id, '--grace-seconds', '60'])).stdout);
    expect(rotated.key).toMatch(/^sk_/);
    expect(rotated.key).not.toBe(key.key);

    const revoked = JSON.parse((await tollgateInProcess(['--json', 'keys', 'revoke', key.id, '--reason', 'cli test'])).stdout);
    expect(revoked).toMatchObject({ status: 'revoked', revoked_reason: 'cli test' });

    const deleted = await tollgate(['--json', 'keys', 'delete', key.id]); // the real process again
    expect(deleted.code).toBe(0);
    expect(JSON.parse(deleted.stdout)).toEqual({ id: key.id, object: 'key', deleted: true });
  }, 120_000);

  it('prints tables for people, and the plaintext once with a warning', async () => {
    const created = await tollgate(['keys', 'create', '--user', 'cli-table', '--name', 'table key', '--permission-set', 'read_only']);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/shown once/);
    expect(created.stdout).toMatch(/sk_[0-9A-Za-z]{30}/);
    const list = await tollgate(['keys', 'list', 'cli-table']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/ID\s.*USER\s.*NAME/);
    expect(list.stdout).toContain('table key');
    expect(list.stdout).toContain('set:read_only');
    expect(list.stdout).not.toMatch(/sk_[0-9A-Za-z]{30}/);
  }, 60_000);

  it('exit 1 with the API error on stderr (human and --json)', async () => {
    const human = await tollgate(['keys', 'get', 'key_00000000000000000000']);
    expect(human.code).toBe(1);
    expect(human.stdout).toBe('');
    expect(human.stderr).toMatch(/No such key \(HTTP 404 not_found\)/);
    const json = await tollgateInProcess(['--json', 'keys', 'create', '--user', 'u', '--name', 'n', '--permission-set', 'nope']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stderr)).toMatchObject({ error: 'unknown_permission_set' });
    const badToken = await tollgateInProcess(['--token', 'wrong-token-wrong-token', 'keys', 'list']);
    expect(badToken.code).toBe(1);
    expect(badToken.stderr).toMatch(/HTTP 401/);
  }, 60_000);

  it('exit 2 for usage errors', async () => {
    const missing = await tollgate(['keys', 'create', '--user', 'u']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--name/);
    expect((await tollgateInProcess(['keys', 'create', '--user', 'u', '--name', 'n', '--rate-per-minute', 'lots'])).code).toBe(2);
    expect((await tollgateInProcess(['keys', 'frobnicate'])).code).toBe(2);
    const noToken = await tollgate(['keys', 'list'], { TOLLGATE_TOKEN: undefined });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/no token/);
    const usage = await tollgateInProcess(['usage']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/give a user id/);
  }, 60_000);

  it('takes the token from ADMIN_TOKEN (first of several) and --token', async () => {
    expect((await tollgate(['keys', 'list'], { TOLLGATE_TOKEN: undefined, ADMIN_TOKEN: `${TEST_ADMIN_TOKEN},another-token-0123456789` })).code).toBe(0);
    expect((await tollgateInProcess(['--token', TEST_ADMIN_TOKEN, 'keys', 'list'])).code).toBe(0);
  }, 60_000);

  it('exit 3 when nothing answers at --api-url', async () => {
    const port = await freePort();
    const r = await tollgate(['--json', '--api-url', `http://127.0.0.1:${port}`, 'keys', 'list']);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stderr)).toMatchObject({ error: 'unreachable' });
  }, 60_000);
});

describe('tollgate tokens, vault, usage', () => {
  it('seed 001’s flow: create (token once), list, unused, revoke', async () => {
    const created = await tollgateInProcess([
      'tokens',
      'create',
      '--project',
      'captionacc',
      '--service',
      'api',
      '--description',
      'CaptionA.cc API service',
      '--expires-in-days',
      '90',
    ]);
    expect(created.code).toBe(0);
    const token = /\n\n {2}(\S+)\n/.exec(created.stdout)?.[1] ?? '';
    expect(token.split('.')).toHaveLength(3);
    const list = await tollgateInProcess(['--json', 'tokens', 'list', '--active']);
    const entry = JSON.parse(list.stdout).data.find((t: { project: string }) => t.project === 'captionacc');
    expect(entry).toMatchObject({ service: 'api', status: 'active' });
    expect(list.stdout).not.toContain(token);
    const unused = await tollgateInProcess(['--json', 'tokens', 'unused', '--days', '7']);
    expect(JSON.parse(unused.stdout).data.map((t: { jti: string }) => t.jti)).toContain(entry.jti);
    const revoked = await tollgateInProcess(['tokens', 'revoke', entry.jti, '--reason', 'rotated']);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain('Revoked');
  });

  it('vault set (secret from the environment) / list / delete / rewrap; secrets never printed', async () => {
    let stdout = '';
    const code = await run(['vault', 'set', 'cli-vault', 'Daily', '--secret-env', 'DAILY_KEY'], {
      env: { TOLLGATE_API_URL: api.url, TOLLGATE_TOKEN: TEST_ADMIN_TOKEN, DAILY_KEY: 'daily_cli_secret_value_42' },
      output: { out: (t) => (stdout += t), err: (t) => (stdout += t) },
    });
    expect(code).toBe(0);
    expect(stdout).toMatch(/Stored daily credential for cli-vault/);
    const list = await tollgateInProcess(['vault', 'list', 'cli-vault']);
    expect(list.stdout).toContain('daily');
    expect(list.stdout + stdout).not.toContain('daily_cli_secret_value_42');
    expect((await tollgateInProcess(['vault', 'rewrap'])).code).toBe(0);
    expect((await tollgateInProcess(['vault', 'delete', 'cli-vault', 'daily'])).code).toBe(0);
    expect((await tollgateInProcess(['vault', 'delete', 'cli-vault', 'daily'])).code).toBe(1);
    expect((await tollgateInProcess(['vault', 'set', 'cli-vault', 'daily', '--secret-env', 'NOPE'])).code).toBe(2);
  });

  it('vault operator add / list / rotate / delete (admin token only); secrets never printed', async () => {
    const first = 'openai_cli_operator_secret_1';
    const second = 'openai_cli_operator_secret_2';
    // The real process, so everything it writes is seen: the secret comes from the environment.
    const added = await tollgate(['vault', 'operator', 'add', 'OpenAI', '--label', 'org 1', '--secret-env', 'OP_KEY'], { OP_KEY: first });
    expect(added.code, added.stderr).toBe(0);
    const id = /operator credential (opc_[0-9a-f]{24}) for openai \("org 1"/.exec(added.stdout)?.[1];
    expect(id).toBeDefined();
    const other = JSON.parse((await tollgateInProcess(['--json', 'vault', 'operator', 'add', 'daily', '--label', 'd', '--secret', 'daily_cli_op'])).stdout);
    expect(other).toMatchObject({ object: 'operator_credential', provider: 'daily', label: 'd' });

    const list = await tollgateInProcess(['vault', 'operator', 'list']);
    expect(list.stdout).toMatch(/ID\s.*PROVIDER\s.*LABEL\s.*FINGERPRINT.*ROTATION/);
    expect(list.stdout).toMatch(new RegExp(`${id}.*│ in +│$`, 'm'));
    expect(list.stdout).toContain(id!);
    const onlyOpenai = JSON.parse((await tollgateInProcess(['--json', 'vault', 'operator', 'list', '--provider', 'OPENAI'])).stdout);
    expect(onlyOpenai.data.map((c: { id: string }) => c.id)).toEqual([id]);

    const rotated = await tollgate(['--json', 'vault', 'operator', 'rotate', id!, '--secret-env', 'OP_KEY', '--label', 'org 1b'], { OP_KEY: second });
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(JSON.parse(rotated.stdout)).toMatchObject({ id, label: 'org 1b' });
    expect(JSON.parse(rotated.stdout).fingerprint).not.toBe(onlyOpenai.data[0].fingerprint);
    for (const out of [added, rotated, list]) expect(out.stdout + out.stderr).not.toMatch(/openai_cli_operator_secret/);

    // An owner key reaches none of it: exit 1 with the API's 403, and nothing listed.
    const owner = JSON.parse((await tollgateInProcess(['--json', 'keys', 'create', '--user', 'cli-owner', '--name', 'o', '--scope', 'keys:manage'])).stdout);
    const refused = await tollgateInProcess(['--token', owner.key, 'vault', 'operator', 'list']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/HTTP 403 forbidden/);
    expect(refused.stdout).toBe('');
    expect((await tollgateInProcess(['--token', owner.key, 'vault', 'operator', 'add', 'daily', '--label', 'x', '--secret', 'nope'])).code).toBe(1);

    expect((await tollgateInProcess(['vault', 'operator', 'add', 'daily', '--label', 'x', '--secret-env', 'NOPE'])).code).toBe(2);
    expect((await tollgateInProcess(['vault', 'operator', 'add', 'daily', '--secret', 'no-label'])).code).toBe(2);
    expect((await tollgateInProcess(['vault', 'operator', 'rotate', id!])).code).toBe(2);

    const rewrap = JSON.parse((await tollgateInProcess(['--json', 'vault', 'rewrap'])).stdout);
    expect(rewrap).toMatchObject({ failed: 0, by_table: { operator_credentials: { failed: 0 } } });

    expect((await tollgateInProcess(['vault', 'operator', 'delete', id!])).stdout).toContain(`Deleted operator credential ${id} (openai)`);
    expect((await tollgateInProcess(['vault', 'operator', 'delete', id!])).code).toBe(1);
    expect((await tollgateInProcess(['vault', 'operator', 'delete', other.id])).code).toBe(0);
    expect(JSON.parse((await tollgateInProcess(['--json', 'vault', 'operator', 'list'])).stdout).data).toEqual([]);
  }, 120_000);

  it('usage per user and billing status', async () => {
    const usage = await tollgateInProcess(['--json', 'usage', 'cli-user']);
    expect(usage.code).toBe(0);
    expect(JSON.parse(usage.stdout)).toMatchObject({ user_id: 'cli-user', total_requests: 0 });
    const billing = await tollgateInProcess(['usage', '--billing']);
    expect(billing.stdout).toMatch(/Pending meter events: 0/);
    expect((await tollgateInProcess(['usage', 'cli-user', '--from', 'tomorrow'])).code).toBe(1);
  });
});

describe('tollgate audit and key search (through @tollgate/sdk)', () => {
  it('searches keys by name and status, and lists audit events with filters and pages', async () => {
    const made = JSON.parse((await tollgateInProcess(['--json', 'keys', 'create', '--user', 'cli-audit', '--name', 'Findable audit key'])).stdout);
    const other = JSON.parse((await tollgateInProcess(['--json', 'keys', 'create', '--user', 'cli-audit', '--name', 'second'])).stdout);
    expect((await tollgateInProcess(['keys', 'revoke', other.id, '--reason', 'cli audit'])).code).toBe(0);

    const found = JSON.parse((await tollgateInProcess(['--json', 'keys', 'list', '--search', 'findable audit'])).stdout);
    expect(found.data.map((k: { id: string }) => k.id)).toEqual([made.id]);
    const revoked = JSON.parse((await tollgateInProcess(['--json', 'keys', 'list', '--search', 'cli-audit', '--status', 'revoked'])).stdout);
    expect(revoked.data.map((k: { id: string }) => k.id)).toEqual([other.id]);
    expect((await tollgateInProcess(['keys', 'list', 'cli-audit', '--search', 'x'])).code).toBe(2);

    const events = JSON.parse((await tollgateInProcess(['--json', 'audit', '--key', other.id])).stdout);
    expect(events.data.map((e: { action: string }) => e.action)).toEqual(['key.revoked', 'key.created']);
    const firstPage = JSON.parse((await tollgateInProcess(['--json', 'audit', '--key', other.id, '--limit', '1'])).stdout);
    expect(firstPage.data).toHaveLength(1);
    const all = JSON.parse((await tollgateInProcess(['--json', 'audit', '--key', other.id, '--limit', '1', '--all'])).stdout);
    expect(all).toEqual({ data: events.data, next_cursor: null });
    const table = await tollgateInProcess(['audit', '--action', 'key.revoked', '--key', other.id]);
    expect(table.stdout).toMatch(/key\.revoked.*"reason":"cli audit"/);
    const bad = await tollgateInProcess(['audit', '--since', 'yesterday']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/HTTP 400 invalid_request/);
  });
});

describe('tollgate plans list (through @tollgate/sdk)', () => {
  it('lists the configured plans, and keys are put on one by --plan', async () => {
    const json = await tollgateInProcess(['--json', 'plans', 'list']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).data.map((p: { name: string }) => p.name)).toEqual(['starter', 'pro']);
    const table = await tollgateInProcess(['plans', 'list']);
    expect(table.stdout).toMatch(/starter\s*│\s*60\s*│\s*-\s*│\s*-\s*│\s*\(any\)\s*│\s*price_cli_starter/);
    expect(table.stdout).toMatch(/pro\s*│\s*600\s*│\s*-\s*│\s*100000\s*│\s*read write\s*│\s*-\s*│\s*pro_monthly/);

    const made = JSON.parse((await tollgateInProcess(['--json', 'keys', 'create', '--user', 'cli-plans', '--name', 'on a plan', '--plan', 'pro'])).stdout);
    expect(made).toMatchObject({ plan: 'pro', effective_limits: { rate_limit_per_minute: 600, monthly_quota: 100000 } });
    const details = await tollgateInProcess(['keys', 'update', made.id, '--plan', 'starter']);
    expect(details.stdout).toMatch(/plan\s*│\s*starter/);
    expect(details.stdout).toMatch(/effective limits\s*│\s*60\/min/);
    const bad = await tollgateInProcess(['keys', 'update', made.id, '--plan', 'gold']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('"gold" is not a configured plan');
    expect(JSON.parse((await tollgateInProcess(['--json', 'keys', 'update', made.id, '--plan', 'none'])).stdout).plan).toBeNull();
  });
});

describe('tollgate webhooks', () => {
  it('creates an endpoint (secret printed once), lists it and its deliveries, retries, rotates and deletes', async () => {
    const made = await tollgateInProcess(['webhooks', 'create', '--url', 'https://hooks.example.com/cli', '--event', 'key.created', '--event', 'key.revoked']);
    expect(made.code).toBe(0);
    const secret = /\n(whsec_\S+)\n/.exec(made.stdout)?.[1];
    expect(secret).toBeDefined();
    const id = /(whe_[0-9a-f]{24})/.exec(made.stdout)![1]!;
    const listed = await tollgateInProcess(['webhooks', 'list']);
    expect(listed.stdout).toContain(id);
    expect(listed.stdout).toContain('key.created key.revoked');
    expect(listed.stdout).not.toContain(secret!);

    // This API sends nothing (no dispatcher runs in it), so the delivery stays pending.
    await tollgateInProcess(['keys', 'create', '--user', 'cli-hooks', '--name', 'announced']);
    const page = JSON.parse((await tollgateInProcess(['--json', 'webhooks', 'deliveries', '--endpoint', id, '--status', 'pending'])).stdout);
    expect(page.data.map((d: { event_type: string }) => d.event_type)).toEqual(['key.created']);
    const retried = await tollgateInProcess(['webhooks', 'retry', page.data[0].id]);
    expect(retried.stdout).toMatch(/Queued msg_[0-9a-f]{32} \(key\.created\)/);

    const rotated = await tollgateInProcess(['webhooks', 'rotate-secret', id, '--grace', '0']);
    const newSecret = /\n(whsec_\S+)\n/.exec(rotated.stdout)?.[1];
    expect(newSecret).toBeDefined();
    expect(newSecret).not.toBe(secret);

    const refused = await tollgateInProcess(['webhooks', 'create', '--url', 'http://127.0.0.1:9/x', '--event', 'key.created']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/HTTP 400 webhook_target_refused/);
    expect((await tollgateInProcess(['webhooks', 'create', '--url', 'https://x.example.com', '--event', 'key.nope'])).code).toBe(2);

    expect((await tollgateInProcess(['webhooks', 'delete', id])).stdout).toContain(`Deleted webhook endpoint ${id}.`);
    expect((await tollgateInProcess(['webhooks', 'list'])).stdout).not.toContain(id);
  });
});
