import { appendFileSync, existsSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sleep, TestStack } from '@tollgate/devstack';
import type { AccessLogServiceClient } from '@tollgate/proto';
import type { BillingSidecar } from '../src/app.js';
import { AccessLogTailer, type TailerOptions } from '../src/ingest/access-log-tailer.js';
import { readKeysUsage, readKeyUsage, readOutcomeSeries, readUserUsage, UsageRangeError } from '@tollgate/usage-model';
import { alsEntry, sendStream, silentLogger, startSidecarStack, testConfig, waitUntil } from './helpers.js';

// The sidecar in-process against real Postgres, fed over gRPC the way Envoy feeds it and
// through the JSON access-log file.
const infra = inject('infra');
let db: { url: string; drop: () => Promise<void> };
let sidecar: BillingSidecar;
let client: AccessLogServiceClient;
const logDir = mkdtempSync(join(tmpdir(), 'tollgate-billing-log-'));
const logPath = join(logDir, 'access.log');

async function countFor(keyId: string): Promise<number> {
  const r = await sidecar.pool.query<{ n: number }>('select count(*)::int as n from usage_records where key_id = $1', [keyId]);
  return r.rows[0]!.n;
}

function jsonLine(fields: Record<string, unknown>): string {
  return `${JSON.stringify({
    request_id: randomUUID(),
    start_time: new Date().toISOString(),
    method: 'POST',
    path: '/echo?q=secret',
    status: 200,
    request_bytes: 10,
    response_bytes: 20,
    duration_ms: 4,
    user_id: 'user_f',
    key_id: 'key_file',
    token_id: null,
    credential: 'api_key',
    stripe_customer_id: null,
    ...fields,
  })}\n`;
}

const stack = new TestStack();

beforeAll(async () => {
  writeFileSync(logPath, '');
  ({ db, sidecar, client } = await startSidecarStack(stack, infra, 'billing_ingest', { ENVOY_ACCESS_LOG_PATH: logPath }));
});

afterAll(() => stack.stop());

describe('gRPC access-log ingest', () => {
  it('records one usage row per identified entry, with the fields billing needs', async () => {
    const requestId = randomUUID();
    await sendStream(client, [
      [
        alsEntry({
          requestId,
          identity: { user_id: 'user_a', key_id: 'key_a', stripe_customer_id: 'cus_a' },
          status: 201,
          method: 'POST',
          path: '/echo?token=abc',
          requestBytes: 7,
          responseBytes: 99,
        }),
      ],
    ]);
    const row = await waitUntil('row', async () => (await sidecar.pool.query('select * from usage_records where request_id = $1', [requestId])).rows[0]);
    expect(row).toMatchObject({
      key_id: 'key_a',
      user_id: 'user_a',
      credential: 'api_key',
      stripe_customer_id: 'cus_a',
      method: 'POST',
      path: '/echo',
      status: 201,
      request_bytes: '7',
      response_bytes: '99',
      duration_ms: 3,
      billable: true,
      source: 'als',
    });
  });

  it('counts duplicated and replayed entries once, across concurrent streams', async () => {
    const identity = { user_id: 'user_dup', key_id: 'key_dup' };
    const entries = Array.from({ length: 300 }, () => alsEntry({ identity }));
    // The same 300 entries: twice within one batch, replayed on four concurrent streams.
    await Promise.all([
      sendStream(client, [[...entries.slice(0, 150), ...entries.slice(0, 150)], entries.slice(150)]),
      ...Array.from({ length: 4 }, () => sendStream(client, [entries.slice(0, 100), entries.slice(100, 200), entries.slice(200)])),
    ]);
    await sidecar.writer.flush();
    expect(await countFor('key_dup')).toBe(300);
    const usage = await readUserUsage(sidecar.pool, 'user_dup');
    expect(usage.total_requests).toBe(300);
    expect(usage.keys).toEqual([expect.objectContaining({ key_id: 'key_dup', total_requests: 300, billable_requests: 300 })]);
    // Replaying everything later changes nothing either.
    await sendStream(client, [entries]);
    await sidecar.writer.flush();
    expect((await readUserUsage(sidecar.pool, 'user_dup')).total_requests).toBe(300);
  });

  it('keeps what a stream sent before it broke', async () => {
    const identity = { user_id: 'user_broken', key_id: 'key_broken' };
    await sendStream(client, [Array.from({ length: 50 }, () => alsEntry({ identity })), Array.from({ length: 25 }, () => alsEntry({ identity }))], {
      cancelAfter: true,
    });
    await waitUntil('rows from the broken stream', async () => (await countFor('key_broken')) === 75);
  });

  it('skips entries without a key identity and marks 429 and 5xx as not billable', async () => {
    const identity = { user_id: 'user_rule', key_id: 'key_rule' };
    await sendStream(client, [
      [
        alsEntry({ identity: null }),
        alsEntry({ identity: { user_id: 'user_rule' } }),
        alsEntry({ identity, status: 200 }),
        alsEntry({ identity, status: 404 }),
        alsEntry({ identity, status: 429 }),
        alsEntry({ identity, status: 503 }),
        alsEntry({ identity, status: 0 }),
      ],
    ]);
    await sidecar.writer.flush();
    await waitUntil('rule rows', async () => (await countFor('key_rule')) === 5);
    const usage = await readKeyUsage(sidecar.pool, 'key_rule', { granularity: 'hour' });
    expect(usage).toMatchObject({ key_id: 'key_rule', user_id: 'user_rule', total_requests: 5, billable_requests: 2 });
    expect(usage.buckets).toHaveLength(1);
    const metrics = await sidecar.registry.metrics();
    expect(metrics).toMatch(/tollgate_billing_entries_skipped_total\{source="als",reason="no_identity",service="billing-sidecar"\} [1-9]/);
  });

  it('rolls requests up by outcome class, once each, for the console’s charts', async () => {
    const identity = { user_id: 'user_outcome', key_id: 'key_outcome' };
    const at = Date.UTC(2031, 2, 3, 12, 15);
    const statuses = [200, 204, 302, 401, 401, 403, 429, 429, 429, 500, 503, 404, 101];
    const entries = statuses.map((status, i) => alsEntry({ identity, status, startMs: at + i * 1000 }));
    // The same entries again: a replay adds nothing to any class.
    await sendStream(client, [entries, entries]);
    await sidecar.writer.flush();
    await waitUntil('outcome rows', async () => (await countFor('key_outcome')) === statuses.length);
    const classes = { allowed: 3, unauthenticated: 2, forbidden: 1, rate_limited: 3, server_error: 2, other: 2 };
    const hourly = await readOutcomeSeries(
      sidecar.pool,
      { keyId: 'key_outcome' },
      { from: '2031-03-03T11:00:00Z', to: '2031-03-03T14:00:00Z', bucket: 'hour' },
    );
    expect(hourly.points).toEqual([
      { t: '2031-03-03T11:00:00.000Z', allowed: 0, unauthenticated: 0, forbidden: 0, rate_limited: 0, server_error: 0, other: 0 },
      { t: '2031-03-03T12:00:00.000Z', ...classes },
      { t: '2031-03-03T13:00:00.000Z', allowed: 0, unauthenticated: 0, forbidden: 0, rate_limited: 0, server_error: 0, other: 0 },
    ]);
    const daily = await readOutcomeSeries(
      sidecar.pool,
      { userId: 'user_outcome' },
      { from: '2031-03-02T00:00:00Z', to: '2031-03-04T00:00:00Z', bucket: 'day' },
    );
    expect(daily.points.map((p) => [p.t, p.allowed, p.rate_limited])).toEqual([
      ['2031-03-02T00:00:00.000Z', 0, 0],
      ['2031-03-03T00:00:00.000Z', 3, 3],
    ]);
    const page = await readKeysUsage(sidecar.pool, ['key_outcome', 'key_idle'], { from: '2031-03-01T00:00:00Z', to: '2031-03-04T00:00:00Z' });
    expect(page.data['key_outcome']).toEqual({
      requests: statuses.length,
      by_outcome: classes,
      last_used_at: new Date(at + 12_000).toISOString(),
      daily: [0, 0, 13],
    });
    expect(page.data['key_idle']).toMatchObject({ requests: 0, last_used_at: null, daily: [0, 0, 0] });
  });

  it('attributes service-token requests to the token', async () => {
    await sendStream(client, [[alsEntry({ identity: { user_id: 'svc_owner', token_id: 'tok_1', credential: 'service_token' } })]]);
    const usage = await waitUntil('token usage', async () => {
      const u = await readUserUsage(sidecar.pool, 'svc_owner');
      return u.total_requests === 1 ? u : undefined;
    });
    expect(usage.keys[0]).toMatchObject({ key_id: 'tok_1', credential: 'service_token' });
  });

  it('reads usage per user and per key by range, and rejects a bad range', async () => {
    const identity = { user_id: 'user_range', key_id: 'key_range' };
    const day = Date.UTC(2030, 0, 15, 10, 30);
    await sendStream(client, [
      [alsEntry({ identity, startMs: day }), alsEntry({ identity, startMs: day + 3_600_000 }), alsEntry({ identity, startMs: day + 86_400_000 })],
    ]);
    await waitUntil('range rows', async () => (await countFor('key_range')) === 3);
    const hourly = await readKeyUsage(sidecar.pool, 'key_range', { from: '2030-01-15T00:00:00Z', to: '2030-01-16T00:00:00Z', granularity: 'hour' });
    expect(hourly.total_requests).toBe(2);
    expect(hourly.buckets.map((b) => b.start)).toEqual(['2030-01-15T10:00:00.000Z', '2030-01-15T11:00:00.000Z']);
    const daily = await readKeyUsage(sidecar.pool, 'key_range', { from: '2030-01-01T00:00:00Z', to: '2030-02-01T00:00:00Z' });
    expect(daily.buckets.map((b) => [b.start, b.total_requests])).toEqual([
      ['2030-01-15T00:00:00.000Z', 2],
      ['2030-01-16T00:00:00.000Z', 1],
    ]);
    const user = await readUserUsage(sidecar.pool, 'user_range', { from: '2030-01-15T11:00:00Z', to: '2030-01-17T00:00:00Z' });
    expect(user).toMatchObject({ user_id: 'user_range', total_requests: 2, from: '2030-01-15T11:00:00.000Z', to: '2030-01-17T00:00:00.000Z' });
    await expect(readUserUsage(sidecar.pool, 'user_range', { from: 'yesterday' })).rejects.toBeInstanceOf(UsageRangeError);
    await expect(readUserUsage(sidecar.pool, 'user_range', { from: '2030-01-02', to: '2030-01-01' })).rejects.toThrow(/before/);
  });
});

describe('JSON access-log backfill', () => {
  it('reads lines from the file, de-duplicated against the gRPC stream by request id', async () => {
    const shared = randomUUID();
    await sendStream(client, [[alsEntry({ requestId: shared, identity: { user_id: 'user_f', key_id: 'key_file' } })]]);
    appendFileSync(logPath, jsonLine({ request_id: shared }) + jsonLine({}) + jsonLine({ status: 503 }) + 'not json\n' + jsonLine({ key_id: null }));
    await waitUntil('file rows', async () => (await countFor('key_file')) === 3);
    const r = await sidecar.pool.query<{ path: string }>(`select distinct path from usage_records where key_id = 'key_file'`);
    expect(r.rows.map((x) => x.path).sort()).toEqual(['/echo', '/hello']);
  });

  it('waits for a line Envoy has not finished writing', async () => {
    const line = jsonLine({ key_id: 'key_partial' });
    appendFileSync(logPath, line.slice(0, 30));
    await sidecar.tailer!.poll();
    appendFileSync(logPath, line.slice(30));
    await waitUntil('partial line', async () => (await countFor('key_partial')) === 1);
  });

  it('reads each line once as the file grows (a growing file is not taken for a truncated one)', async () => {
    const fileEntries = async () =>
      (await sidecar.registry.getSingleMetric('tollgate_billing_entries_received_total')!.get()).values
        .filter((v) => v.labels.source === 'file')
        .reduce((sum, v) => sum + v.value, 0);
    // Earlier tests left the file longer than the stored head (128 bytes), the case that broke.
    await sidecar.tailer!.poll();
    const before = await fileEntries();
    appendFileSync(logPath, jsonLine({ key_id: 'key_grow' }));
    await waitUntil('first line', async () => (await countFor('key_grow')) === 1);
    await sleep(200); // several polls of the tailer
    appendFileSync(logPath, jsonLine({ key_id: 'key_grow' }));
    await waitUntil('second line', async () => (await countFor('key_grow')) === 2);
    await sleep(200);
    await sidecar.tailer!.poll();
    expect((await fileEntries()) - before).toBe(2);
  });

  it('finishes a rotated file, then reads the new one from its start', async () => {
    appendFileSync(logPath, jsonLine({ key_id: 'key_rot' }));
    await waitUntil('before rotation', async () => (await countFor('key_rot')) === 1);
    await sidecar.tailer!.stop(); // hold the tailer so the rotation happens between two reads
    appendFileSync(logPath, jsonLine({ key_id: 'key_rot' }) + jsonLine({ key_id: 'key_rot' }));
    renameSync(logPath, `${logPath}.1`);
    writeFileSync(logPath, jsonLine({ key_id: 'key_rot' }));
    // Restart reading as a new process would, from the stored offset.
    const cfg = testConfig(db.url);
    const tailer = new AccessLogTailer(
      sidecar.pool,
      sidecar.writer,
      cfg.BILLING_NON_BILLABLE_STATUSES,
      { path: logPath, pollIntervalMs: 50, hostId: cfg.ACCESS_LOG_HOST_ID, rotateBytes: 0, envoyAdminUrl: cfg.ENVOY_ADMIN_URL },
      sidecar.metrics,
      silentLogger,
    );
    await tailer.start();
    await waitUntil('after rotation', async () => (await countFor('key_rot')) === 4);
    // Truncation in place (copytruncate) starts the file over.
    writeFileSync(logPath, jsonLine({ key_id: 'key_rot' }));
    await waitUntil('after truncation', async () => (await countFor('key_rot')) === 5);
    await tailer.stop();
  });
});

describe('JSON access-log offsets keyed by file identity', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-billing-offsets-'));
  const path = join(dir, 'access.log');
  const fileEntries = async () =>
    (await sidecar.registry.getSingleMetric('tollgate_billing_entries_received_total')!.get()).values
      .filter((v) => v.labels.source === 'file')
      .reduce((sum, v) => sum + v.value, 0);
  /** Runs one tailer (as one sidecar process would, from its stored offsets) for one pass. */
  const runTailer = async (hostId: string, extra: Partial<TailerOptions> = {}) => {
    const cfg = testConfig(db.url);
    const before = await fileEntries();
    const tailer = new AccessLogTailer(
      sidecar.pool,
      sidecar.writer,
      cfg.BILLING_NON_BILLABLE_STATUSES,
      { path, pollIntervalMs: 60_000, hostId, rotateBytes: 0, envoyAdminUrl: 'http://127.0.0.1:9', ...extra },
      sidecar.metrics,
      silentLogger,
    );
    await tailer.start();
    await tailer.stop();
    await sidecar.writer.flush();
    return (await fileEntries()) - before;
  };
  const lines = (n: number, keyId: string) => Array.from({ length: n }, () => jsonLine({ key_id: keyId })).join('');
  const rowsFor = async (hostId: string) =>
    (await sidecar.pool.query('select byte_offset, rotated_to from access_log_offsets where host_id = $1 and path = $2', [hostId, path])).rows;

  it('two hosts reading the same path keep their own offsets', async () => {
    writeFileSync(path, lines(3, 'key_host_a'));
    expect(await runTailer('pod-a')).toBe(3);
    // Pod b's file at the same path (another volume): pod a's file is moved aside meanwhile.
    renameSync(path, `${dir}/a.held`);
    writeFileSync(path, lines(2, 'key_host_b'));
    expect(await runTailer('pod-b')).toBe(2);
    renameSync(path, `${dir}/b.held`);
    renameSync(`${dir}/a.held`, path);
    appendFileSync(path, lines(1, 'key_host_a'));
    // Pod a resumes its own file where it stopped; pod b's offset did not overwrite it.
    expect(await runTailer('pod-a')).toBe(1);
    expect(await countFor('key_host_a')).toBe(4);
    expect((await rowsFor('pod-a')).length).toBe(1);
    expect((await rowsFor('pod-b')).length).toBe(1);
  });

  it('a restart between recording a rotation and the rename goes on with the same file', async () => {
    writeFileSync(path, lines(2, 'key_intent'));
    expect(await runTailer('pod-c')).toBe(2);
    await sidecar.pool.query(`update access_log_offsets set rotated_to = $2 where host_id = 'pod-c' and path = $1`, [path, `${path}.20990101T000000000Z`]);
    appendFileSync(path, lines(1, 'key_intent'));
    expect(await runTailer('pod-c')).toBe(1);
    expect((await rowsFor('pod-c')).map((r) => r.rotated_to)).toEqual([null]);
  });

  it('a restart after the rename finishes the renamed file first, then deletes it', async () => {
    writeFileSync(path, lines(2, 'key_renamed'));
    expect(await runTailer('pod-d')).toBe(2);
    const renamed = `${path}.20990101T000000001Z`;
    await sidecar.pool.query(`update access_log_offsets set rotated_to = $2 where host_id = 'pod-d' and path = $1`, [path, renamed]);
    renameSync(path, renamed);
    appendFileSync(renamed, lines(1, 'key_renamed')); // Envoy wrote on before it reopened
    writeFileSync(path, lines(1, 'key_renamed')); // and then reopened, while the sidecar was down
    let reopens = 0;
    expect(await runTailer('pod-d', { reopen: async () => void reopens++ })).toBe(2);
    expect(existsSync(renamed)).toBe(false);
    expect(reopens).toBe(0); // the new file was already there
    expect(await countFor('key_renamed')).toBe(4);
    expect((await rowsFor('pod-d')).map((r) => r.rotated_to)).toEqual([null]);
  });

  it('keeps and follows a renamed file while Envoy cannot be asked to reopen', async () => {
    writeFileSync(path, lines(20, 'key_unreachable'));
    const failing = async () => {
      throw new Error('connect ECONNREFUSED');
    };
    expect(await runTailer('pod-e', { rotateBytes: 4096, reopen: failing })).toBe(20);
    const [row] = await rowsFor('pod-e');
    expect(row.rotated_to).toMatch(/access\.log\.\d{8}T\d{9}Z$/);
    expect(existsSync(path)).toBe(false);
    appendFileSync(row.rotated_to, lines(2, 'key_unreachable')); // Envoy still writes to it
    expect(await runTailer('pod-e', { rotateBytes: 4096, reopen: failing })).toBe(2);
    expect(existsSync(row.rotated_to)).toBe(true);
    // Envoy reopens (here: the new file appears): the renamed file is finished and deleted.
    writeFileSync(path, lines(1, 'key_unreachable'));
    expect(await runTailer('pod-e', { rotateBytes: 4096, reopen: failing })).toBe(1);
    expect(existsSync(row.rotated_to)).toBe(false);
    expect(await countFor('key_unreachable')).toBe(23);
  });
});

describe('operations', () => {
  it('serves /health with its Postgres check, /health/live and /metrics', async () => {
    const base = `http://127.0.0.1:${sidecar.httpPort}`;
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect((await health.json()).checks.postgres.status).toBe('ok');
    expect((await fetch(`${base}/health/live`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const name of [
      'tollgate_billing_entries_received_total',
      'tollgate_billing_records_written_total',
      'tollgate_billing_duplicates_skipped_total',
      'tollgate_billing_ingest_lag_seconds',
    ])
      expect(metrics).toContain(name);
  });
});
