// Ingest benchmark: streams access-log entries over gRPC at a billing-sidecar process, the way
// Envoy does (several long-lived streams, batches per message), and prints the sustained
// ingest rate, the Postgres write rate and the sidecar's peak RSS.
//
//   pnpm bench:billing [-- --seconds 20 --streams 4 --batch 100 --heap-mb 128]
//
// Uses DATABASE_URL's server when set (in a fresh database it drops afterwards), else starts
// its own Postgres on loopback through @tollgate/devstack.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { REPO_ROOT, dropDatabase, ensureDatabase, freePort, httpOk, sleep, startPostgres, startProcess, waitFor, withDatabase } from '@tollgate/devstack';
import { loadEnvoyProtos, type HTTPAccessLogEntry__Input } from '@tollgate/proto';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    streams: { type: 'string', default: '4' },
    batch: { type: 'string', default: '100' },
    keys: { type: 'string', default: '1000' },
    // The sidecar's V8 old-space cap, as its start script runs it (0: Node's default).
    'heap-mb': { type: 'string', default: '128' },
  },
});
const SECONDS = Number(args.seconds);
const STREAMS = Number(args.streams);
const BATCH = Number(args.batch);
const KEYS = Number(args.keys);
const HEAP_MB = Number(args['heap-mb']);

const work = mkdtempSync(join(tmpdir(), 'tollgate-bench-billing-'));
const cleanups: (() => Promise<unknown>)[] = [];
const cleanup = async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  rmSync(work, { recursive: true, force: true });
};

/** Peak resident set size of a process (VmHWM), in MB. */
function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

async function main(): Promise<void> {
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    console.log('starting Postgres on loopback (DATABASE_URL unset)…');
    const server = await startPostgres({ dir: join(work, 'pg'), port: await freePort(), ephemeral: false });
    cleanups.push(() => server.process.stop());
    adminUrl = server.adminUrl;
  }
  const dbName = `tollgate_bench_${randomBytes(3).toString('hex')}`;
  await ensureDatabase(adminUrl, dbName);
  cleanups.push(() => dropDatabase(adminUrl, dbName));
  const databaseUrl = withDatabase(adminUrl, dbName);

  const grpcPort = await freePort();
  const httpPort = await freePort();
  const sidecar = startProcess({
    name: 'billing-sidecar',
    command: process.execPath,
    args: [
      ...(HEAP_MB > 0 ? [`--max-old-space-size=${HEAP_MB}`] : []),
      '--conditions=source',
      '--import',
      'tsx',
      join(REPO_ROOT, 'billing-sidecar', 'src', 'main.ts'),
    ],
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: databaseUrl,
      BILLING_HOST: '127.0.0.1',
      BILLING_GRPC_PORT: String(grpcPort),
      BILLING_HTTP_PORT: String(httpPort),
      LOG_LEVEL: 'error',
    },
  });
  cleanups.push(() => sidecar.stop());
  await waitFor('billing-sidecar', () => httpOk(`http://127.0.0.1:${httpPort}/health`), { child: sidecar, timeoutMs: 60_000 });

  const protos = loadEnvoyProtos();
  const client = new protos.envoy.service.accesslog.v3.AccessLogService(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  cleanups.push(() => pool.end());
  const rows = async () => Number((await pool.query<{ n: string }>('select count(*) as n from usage_records')).rows[0]!.n);

  // Entries as Envoy sends them; request ids unique per run, identities spread over KEYS keys.
  const run = randomBytes(4).toString('hex');
  let seq = 0;
  const entry = (): HTTPAccessLogEntry__Input => {
    const n = seq++;
    const k = n % KEYS;
    const now = Date.now();
    return {
      commonProperties: {
        startTime: { seconds: String(Math.floor(now / 1000)), nanos: (now % 1000) * 1e6 },
        timeToLastDownstreamTxByte: { seconds: '0', nanos: 2_500_000 },
        metadata: {
          filterMetadata: {
            'envoy.filters.http.ext_authz': {
              fields: {
                user_id: { stringValue: `user_${k % 200}` },
                key_id: { stringValue: `key_${k}` },
                credential: { stringValue: 'api_key' },
                ...(k % 3 === 0 && { stripe_customer_id: { stringValue: `cus_${k % 100}` } }),
              },
            },
          },
        },
      },
      request: { requestMethod: 'GET', path: `/v1/items/${n % 50}?page=2`, requestId: `${run}-${n}`, requestBodyBytes: '0' },
      response: { responseCode: { value: n % 97 === 0 ? 503 : 200 }, responseBodyBytes: '512' },
    };
  };

  console.log(`streaming for ${SECONDS}s on ${STREAMS} streams, ${BATCH} entries per message…`);
  const startRows = await rows();
  const t0 = Date.now();
  const deadline = t0 + SECONDS * 1000;
  const streams = Array.from(
    { length: STREAMS },
    () =>
      new Promise<void>((resolve, reject) => {
        const call = client.streamAccessLogs((err) => (err ? reject(err) : resolve()));
        const pump = () => {
          while (Date.now() < deadline) {
            const ok = call.write({ identifier: { logName: 'bench' }, httpLogs: { logEntry: Array.from({ length: BATCH }, entry) } });
            if (!ok) return void call.once('drain', pump);
          }
          call.end();
        };
        pump();
      }),
  );
  await Promise.all(streams);
  const sentAt = Date.now();
  const sent = seq;
  // Sustained ingest: until every entry sent is a row in Postgres.
  while ((await rows()) - startRows < sent) await sleep(100);
  const doneAt = Date.now();
  const written = (await rows()) - startRows;
  const rss = peakRssMb(sidecar.pid);
  client.close();

  const sendSecs = (sentAt - t0) / 1000;
  const totalSecs = (doneAt - t0) / 1000;
  console.log('');
  console.log(`entries sent            ${sent}`);
  console.log(`send rate (gRPC)        ${Math.round(sent / sendSecs)} entries/s over ${sendSecs.toFixed(1)}s`);
  console.log(`sustained ingest        ${Math.round(written / totalSecs)} entries/s (sent → rows in Postgres, ${totalSecs.toFixed(1)}s)`);
  console.log(`Postgres write rate     ${Math.round(written / totalSecs)} rows/s (+ hourly/daily roll-ups in the same statements)`);
  console.log(`drain after last send   ${((doneAt - sentAt) / 1000).toFixed(1)}s`);
  console.log(`sidecar peak RSS        ${rss} MB (${HEAP_MB > 0 ? `--max-old-space-size=${HEAP_MB}` : "Node's default heap"})`);
}

try {
  await main();
} finally {
  await cleanup();
}
