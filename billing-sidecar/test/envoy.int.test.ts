import { createServer, type Server } from 'node:http';
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import {
  REPO_ROOT,
  freePort,
  httpOk,
  sleep,
  startProcess,
  TestStack,
  waitFor,
  type LoopbackEnvoyOptions,
  type ManagedProcess,
  type RunningEnvoy,
} from '@tollgate/devstack';
import { startBillingSidecar, type BillingSidecar } from '../src/app.js';
import { readUserUsage } from '@tollgate/usage-model';
import { compareLogPaths, silentLogger, startCheckDouble, testConfig, waitUntil } from './helpers.js';

// A real Envoy (the canonical envoy.yaml rendered for loopback) in front of a small upstream,
// with ext_authz answered by a double of authz-service's Check contract. Requests through
// Envoy must become usage rows, exactly once, whatever happens to the sidecar.
const infra = inject('infra');
const KEYS = {
  k_alpha: { user_id: 'u_alpha', key_id: 'key_alpha', stripe_customer_id: 'cus_alpha' },
  k_beta: { user_id: 'u_beta', key_id: 'key_beta' },
  k_limited: { user_id: 'u_alpha', key_id: 'key_limited', deny: 429 as const },
  k_read_only: { user_id: 'u_gamma', key_id: 'key_read_only', deny: 403 as const },
  t_worker: { token_id: 'tok-worker', credential: 'service_token', project: 'captionacc', service: 'worker' },
};

let upstreamPort: number;
let check: { port: number; stop: () => void };

/** A stack for the file or one describe, stopped after it. */
function stackFor(): TestStack {
  const stack = new TestStack();
  afterAll(() => stack.stop());
  return stack;
}
const fileStack = stackFor();

beforeAll(async () => {
  upstreamPort = await freePort();
  await fileStack.start(
    'upstream',
    async () => {
      const upstream = createServer((req, res) => {
        req.resume();
        req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end('hello from upstream'));
      });
      await new Promise<void>((r) => upstream.listen(upstreamPort, '127.0.0.1', r));
      return upstream;
    },
    (upstream: Server) => new Promise((r) => upstream.close(r)),
  );
  check = await fileStack.start(
    'Check double',
    () => startCheckDouble(KEYS),
    (c) => c.stop(),
  );
});

function envoyFor(stack: TestStack, alsPort: number, extra: Partial<LoopbackEnvoyOptions> = {}): Promise<RunningEnvoy> {
  return stack.envoy({ backendPort: upstreamPort, authzPort: check.port, alsPort, ...extra });
}

/** billing-sidecar as its own process (so it can be killed with SIGKILL), ready when /health answers. */
async function startSidecarProcess(env: Record<string, string>, httpPort: number): Promise<ManagedProcess> {
  const proc = startProcess({
    name: 'billing-sidecar',
    command: process.execPath,
    args: ['--conditions=source', '--import', 'tsx', join(REPO_ROOT, 'billing-sidecar', 'src', 'main.ts')],
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      BILLING_HOST: '127.0.0.1',
      BILLING_HTTP_PORT: String(httpPort),
      ACCESS_LOG_POLL_INTERVAL_MS: '100',
      LOG_LEVEL: 'warn',
      ...env,
    },
  });
  await waitFor('billing-sidecar', () => httpOk(`http://127.0.0.1:${httpPort}/health`), { child: proc, timeoutMs: 60_000 });
  return proc;
}

/** Steady load, one client per entry of `keys`; `answered` counts the 200s per key until stop(). */
function steadyLoad(url: string, keys: string[]) {
  const answered: Record<string, number> = Object.fromEntries(keys.map((k) => [k, 0]));
  let loading = true;
  const client = async (key: string) => {
    while (loading) {
      const res = await fetch(`${url}/hello`, { headers: { authorization: `Bearer ${key}` } }).catch(() => undefined);
      if (!res) continue;
      await res.arrayBuffer();
      if (res.status === 200) answered[key]!++;
      await sleep(2);
    }
  };
  const running = keys.map(client);
  return {
    answered,
    total: () => Object.values(answered).reduce((a, b) => a + b, 0),
    stop: async () => {
      loading = false;
      await Promise.all(running);
    },
  };
}

async function count(pool: pg.Pool, where = 'true'): Promise<number> {
  return (await pool.query<{ n: number }>(`select count(*)::int as n from usage_records where ${where}`)).rows[0]!.n;
}

describe('requests through Envoy become usage rows', () => {
  const stack = stackFor();
  let db: { url: string; drop: () => Promise<void> };
  let sidecar: BillingSidecar;
  let envoy: RunningEnvoy;

  beforeAll(async () => {
    db = await stack.database(infra, 'billing_envoy');
    const grpcPort = await freePort();
    // The sidecar's stop is registered before Envoy's, so Envoy stops first; Envoy starts
    // first all the same, so the sidecar can be pointed at the JSON log it writes.
    const sidecarSlot = stack.replaceable<BillingSidecar>('billing-sidecar', (s) => s.stop());
    envoy = await envoyFor(stack, grpcPort);
    sidecar = sidecarSlot.current = await startBillingSidecar(
      testConfig(db.url, { BILLING_GRPC_PORT: String(grpcPort), ENVOY_ACCESS_LOG_PATH: envoy.accessLogPath! }),
      silentLogger,
    );
  });

  it('records each answered request with a key identity once (stream and file both carry it)', async () => {
    const statuses: number[] = [];
    const send = async (key: string | null, path: string) => {
      const res = await fetch(`${envoy.url}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
      await res.arrayBuffer();
      statuses.push(res.status);
      return res.status;
    };
    for (let i = 0; i < 20; i++) expect(await send('k_alpha', `/hello?i=${i}`)).toBe(200);
    for (let i = 0; i < 7; i++) expect(await send('k_beta', '/echo')).toBe(200);
    for (let i = 0; i < 3; i++) expect(await send('k_limited', '/hello')).toBe(429);
    for (let i = 0; i < 4; i++) expect(await send(null, '/hello')).toBe(401);
    for (let i = 0; i < 5; i++) expect(await send('k_read_only', '/echo')).toBe(403);
    for (let i = 0; i < 2; i++) expect(await send('t_worker', '/hello')).toBe(200);

    await waitUntil('usage rows', async () => (await count(sidecar.pool)) === 37);
    // Both logs have delivered everything: the stream's entries and the file's lines overlap fully.
    await waitUntil('file caught up', async () => {
      const m = await sidecar.registry.getSingleMetricAsString('tollgate_billing_entries_received_total');
      return /source="file"[^\n]* 41/.test(m);
    });
    await sidecar.writer.flush();
    expect(await count(sidecar.pool)).toBe(37);
    // The gateway's refusals are recorded, never billed — the 403s included, which the status
    // rule alone would bill — on whichever log path delivered them first.
    expect(await count(sidecar.pool, `key_id = 'key_read_only' and decision = 'deny' and error_code = 'insufficient_scope' and not billable`)).toBe(5);
    expect(await count(sidecar.pool, `key_id = 'key_limited' and decision = 'deny' and error_code = 'rate_limited' and not billable`)).toBe(3);
    expect(await count(sidecar.pool, `key_id = 'tok-worker' and user_id is null and project = 'captionacc' and service = 'worker' and billable`)).toBe(2);
    const paths = await compareLogPaths(sidecar.pool, envoy.accessLogPath!);
    expect(paths.disagreements).toEqual([]);
    expect(paths.fromStream).toBeGreaterThan(0);
    const alpha = await readUserUsage(sidecar.pool, 'u_alpha');
    expect(alpha.total_requests).toBe(23);
    expect(alpha.billable_requests).toBe(20);
    expect(alpha.keys.map((k) => [k.key_id, k.total_requests, k.billable_requests])).toEqual([
      ['key_alpha', 20, 20],
      ['key_limited', 3, 0],
    ]);
    const row = (await sidecar.pool.query(`select * from usage_records where key_id = 'key_alpha' limit 1`)).rows[0];
    expect(row).toMatchObject({ user_id: 'u_alpha', stripe_customer_id: 'cus_alpha', method: 'GET', path: '/hello', status: 200 });
    expect(row.request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number(row.response_bytes)).toBe('hello from upstream'.length);
  });
});

/**
 * What a test that kills the sidecar process holds, all stopped after the describe: its
 * database, a pool on it, Envoy, and whichever sidecar process is current (killed first).
 */
async function killableStack(stack: TestStack, label: string, alsPort: number, extra: Partial<LoopbackEnvoyOptions> = {}) {
  const db = await stack.database(infra, label);
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  stack.defer('usage pool', () => pool.end());
  const envoy = await envoyFor(stack, alsPort, extra);
  const sidecar = stack.replaceable<ManagedProcess>('billing-sidecar process', (p) => p.kill9());
  return { db, pool, envoy, sidecar };
}

describe('sidecar killed under load', () => {
  const stack = stackFor();

  it('loses nothing: usage totals equal the requests Envoy answered', async () => {
    const grpcPort = await freePort();
    const httpPort = await freePort();
    const { db, pool, envoy, sidecar } = await killableStack(stack, 'billing_kill', grpcPort);
    const startSidecar = () =>
      startSidecarProcess({ DATABASE_URL: db.url, BILLING_GRPC_PORT: String(grpcPort), ENVOY_ACCESS_LOG_PATH: envoy.accessLogPath! }, httpPort);
    sidecar.current = await startSidecar();

    // Steady load from 4 clients; every answer with a key identity must end up counted.
    const load = steadyLoad(envoy.url, ['k_alpha', 'k_alpha', 'k_beta', 'k_beta']);
    const { answered } = load;
    await sleep(1_000);
    sidecar.current.kill9();
    await sidecar.current.exitedPromise;
    const atKill = load.total();
    await sleep(1_500); // Envoy keeps answering while the sidecar is gone
    expect(load.total()).toBeGreaterThan(atKill);
    sidecar.current = await startSidecar();
    await sleep(1_000);
    await load.stop();

    const total = load.total();
    expect(total).toBeGreaterThan(0);
    await waitUntil(`${total} usage rows`, async () => (await count(pool)) === total, 60_000);
    expect(await count(pool, `key_id = 'key_alpha'`)).toBe(answered.k_alpha);
    expect(await count(pool, `key_id = 'key_beta'`)).toBe(answered.k_beta);
    // Requests answered while the sidecar was dead can only have come from the file.
    expect(await count(pool, `source = 'file'`)).toBeGreaterThan(0);
    const rollup = await pool.query<{ n: string }>('select sum(total_requests) as n from usage_hourly');
    expect(Number(rollup.rows[0]!.n)).toBe(total);
    // And a second restart (replaying nothing new) changes nothing.
    await sidecar.current.stop();
    sidecar.current = await startSidecar();
    await sleep(500);
    expect(await count(pool)).toBe(total);
  });
});

describe('access-log rotation under load, the sidecar killed in between', () => {
  const stack = stackFor();

  it('renames, reopens, finishes and deletes each file: usage equals the requests answered, exactly', async () => {
    // Nothing listens on Envoy's ALS port: the file is the only way usage arrives.
    const deadPort = await freePort();
    const logReopenPort = await freePort();
    const httpPort = await freePort();
    const grpcPort = await freePort();
    const { db, pool, envoy, sidecar } = await killableStack(stack, 'billing_rotation', deadPort, {
      logReopen: { host: '127.0.0.1', port: logReopenPort },
    });
    const logPath = envoy.accessLogPath!;
    const rotated = () => readdirSync(dirname(logPath)).filter((n) => n.startsWith(`${basename(logPath)}.`));
    const metric = async (name: string) => {
      const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
    };
    const ROTATE_BYTES = 16_384;
    // Through the log_reopen listener, as Compose reaches Envoy from the sidecar's container.
    const reachable = `http://127.0.0.1:${logReopenPort}`;
    // That listener is reachable by any container on the network: it forwards POST /reopen_logs
    // and nothing else of the admin interface (no stats, no /quitquitquit, no other method).
    for (const [method, path] of [
      ['GET', '/reopen_logs'],
      ['POST', '/quitquitquit'],
      ['GET', '/stats'],
      ['POST', '/logging?level=trace'],
    ] as const) {
      expect((await fetch(`${reachable}${path}`, { method })).status, `${method} ${path}`).toBe(404);
    }
    expect((await fetch(`${reachable}/reopen_logs`, { method: 'POST' })).status).toBe(200);
    const startSidecar = (adminUrl: string) =>
      startSidecarProcess(
        {
          DATABASE_URL: db.url,
          BILLING_GRPC_PORT: String(grpcPort),
          ENVOY_ACCESS_LOG_PATH: logPath,
          ACCESS_LOG_POLL_INTERVAL_MS: '50',
          ACCESS_LOG_ROTATE_BYTES: String(ROTATE_BYTES),
          ACCESS_LOG_HOST_ID: 'pod-a',
          ENVOY_ADMIN_URL: adminUrl,
        },
        httpPort,
      );

    // 1. Envoy's admin unreachable: the file is renamed once, then kept and followed (Envoy still
    //    writes to it) while the reopen is retried — never deleted unread.
    sidecar.current = await startSidecar(`http://127.0.0.1:${deadPort}`);
    const load = steadyLoad(envoy.url, ['k_alpha', 'k_alpha', 'k_beta', 'k_beta']);
    await waitUntil(
      'a rename whose reopen failed',
      async () => rotated().length === 1 && (await metric('tollgate_billing_access_log_reopen_failures_total')) > 0,
    );
    const [pending] = rotated();
    const sizeThen = statSync(join(dirname(logPath), pending!)).size;
    await waitUntil('Envoy still writing to the renamed file', async () => statSync(join(dirname(logPath), pending!)).size > sizeThen);
    expect(rotated()).toEqual([pending]);

    // 2. Killed while that rotation is pending; Envoy keeps answering (into the renamed file).
    sidecar.current.kill9();
    await sidecar.current.exitedPromise;
    await sleep(1_200);
    sidecar.current = await startSidecar(reachable);
    await waitUntil('the pending rotation finished', async () => !rotated().includes(pending!));

    // 3. Killed again and again while rotations come and go, just after a rename when one is seen.
    let killedMidRotation = 0;
    for (let i = 0; i < 2; i++) {
      await waitUntil('rotations after restart', async () => (await metric('tollgate_billing_access_log_rotations_total')) >= 1);
      const deadline = Date.now() + 3_000;
      while (rotated().length === 0 && Date.now() < deadline) await sleep(1);
      if (rotated().length > 0) killedMidRotation++;
      sidecar.current.kill9();
      await sidecar.current.exitedPromise;
      await sleep(300);
      sidecar.current = await startSidecar(reachable);
    }
    await sleep(1_500);
    await load.stop();

    const total = load.total();
    await waitUntil(`${total} usage rows`, async () => (await count(pool)) === total, 60_000);
    expect(await count(pool, `key_id = 'key_alpha'`)).toBe(load.answered.k_alpha);
    expect(await count(pool, `key_id = 'key_beta'`)).toBe(load.answered.k_beta);
    expect(await count(pool, `source <> 'file'`)).toBe(0);
    const rollup = await pool.query<{ n: string }>('select sum(total_requests) as n from usage_hourly');
    expect(Number(rollup.rows[0]!.n)).toBe(total);
    console.log(`rotation test: ${total} requests, ${killedMidRotation} of 2 kills with a renamed file pending`);
    // Every renamed file was finished and deleted, and the current one is under the threshold.
    await waitUntil('no renamed file left, the current one short', async () => rotated().length === 0 && statSync(logPath).size < ROTATE_BYTES);
    // Offsets are keyed by this host's file identity; the deleted files' rows are gone (the
    // current file has one once anything in it was read).
    const rows = await pool.query('select host_id, path, rotated_to from access_log_offsets');
    expect(rows.rows.length).toBeLessThanOrEqual(1);
    for (const row of rows.rows) expect(row).toEqual({ host_id: 'pod-a', path: logPath, rotated_to: null });
  }, 240_000); // four sidecar starts on a shared, busy machine
});
