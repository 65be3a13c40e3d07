// Check latency and throughput over gRPC against real Postgres and Redis.
// Usage: pnpm bench:check [--rate 2000] [--seconds 10] [--warmup 3] [--concurrency 1,8,32]
// authz-service runs as its own process (as in production); this process only drives load.
// The load comes from grpc-js in this process rather than ghz: it is the same client Envoy's
// peers use in this codebase, sends each Check with a different key without templates, and
// measures the fixed-rate section with a timer that never busy-waits, so on a 2-core machine the
// driver takes a known, modest share of CPU (printed below as driver_cpu_pct).
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createWriteStream, writeFileSync } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadEnvoyProtos } from '@tollgate/proto';
import { REPO_ROOT, cpuSampler, freePort, httpOk, percentiles, redisServerPid, startBenchStores, startProcess, waitFor } from '@tollgate/devstack';
import { generateKey } from '../src/domain/key-format.js';
import { KeyHasher } from '../src/domain/key-hash.js';
import { KeyStore } from '../src/stores/key-store.js';

const { values: opts } = parseArgs({
  options: {
    rate: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '1,8,32' },
    keys: { type: 'string', default: '100' },
    warmup: { type: 'string', default: '3' },
    // Extra Node flags for authz-service (e.g. "--cpu-prof --cpu-prof-dir=prof" or "--trace-gc"),
    // and a file for its output, to look into what the figures show.
    'node-flags': { type: 'string', default: '' },
    'service-log': { type: 'string' },
    // Run authz-service on these CPUs only (taskset -c), e.g. to keep the driver off its core.
    'service-cpus': { type: 'string' },
    // Nice value (-20..19) for authz-service and, when this script started it, Redis: below 0,
    // they preempt the driver and Postgres, which shows how much of the tail is waiting for a CPU.
    'service-nice': { type: 'string' },
    // The fixed-rate latencies (ms, in the order they completed) as a JSON array, to see when the slow ones happened.
    latencies: { type: 'string' },
  },
});
const rate = Number(opts.rate);
const seconds = Number(opts.seconds);
const concurrencies = opts.concurrency.split(',').map(Number);
if (concurrencies.some((c) => !Number.isInteger(c) || c < 1 || c > 1024)) {
  throw new Error(`--concurrency takes whole numbers from 1 to 1024, comma-separated (got ${opts.concurrency})`);
}
const keyCount = Number(opts.keys);
const serviceNice = opts['service-nice'] === undefined ? undefined : Number(opts['service-nice']);
if (serviceNice !== undefined && !(Number.isInteger(serviceNice) && serviceNice >= -20 && serviceNice <= 19)) {
  throw new Error(`--service-nice takes a whole number from -20 to 19 (got ${opts['service-nice']})`);
}
const warmupSeconds = Number(opts.warmup);

const loadBefore = os.loadavg().map((l) => Number(l.toFixed(2)));
const stores = await startBenchStores('check');
const hashSecret = randomBytes(32).toString('hex');
const grpcPort = await freePort();
const httpPort = await freePort();
const service = startProcess({
  name: 'authz-service',
  command: opts['service-cpus'] ? 'taskset' : process.execPath,
  args: [
    ...(opts['service-cpus'] ? ['-c', opts['service-cpus'], process.execPath] : []),
    ...opts['node-flags'].split(' ').filter(Boolean),
    '--conditions=source',
    '--import',
    'tsx',
    join(REPO_ROOT, 'authz-service', 'src', 'main.ts'),
  ],
  ...(opts['service-log'] ? { output: createWriteStream(opts['service-log']) } : {}),
  env: {
    ...process.env,
    DATABASE_URL: stores.databaseUrl,
    REDIS_URL: stores.redisUrl,
    KEY_HASH_SECRETS: hashSecret,
    ADMIN_TOKEN: randomBytes(24).toString('hex'),
    AUTHZ_GRPC_PORT: String(grpcPort),
    AUTHZ_HTTP_PORT: String(httpPort),
    LOG_LEVEL: 'warn',
  },
});

try {
  await waitFor('authz-service', () => httpOk(`http://127.0.0.1:${httpPort}/health/live`), { child: service, timeoutMs: 60_000 });
  if (serviceNice !== undefined) {
    os.setPriority(service.pid, serviceNice);
    if (!process.env.REDIS_URL) {
      const probe = new Redis(stores.redisUrl);
      os.setPriority(await redisServerPid(probe), serviceNice);
      probe.disconnect();
    }
  }

  // Keys with generous limits, so every Check runs the full path including the Redis script.
  const pool = new pg.Pool({ connectionString: stores.databaseUrl });
  const store = new KeyStore(pool);
  const hasher = new KeyHasher([hashSecret]);
  const keys: string[] = [];
  for (let i = 0; i < keyCount; i++) {
    const k = generateKey('sk');
    await store.insert({
      userId: `bench_${i % 10}`,
      name: 'bench',
      keyPrefix: k.displayPrefix,
      keyHash: hasher.primary(k.plaintext),
      permissionSet: 'full_access',
      rateLimitPerMinute: 1_000_000,
      rateLimitPerDay: 100_000_000,
    });
    keys.push(k.plaintext);
  }
  await pool.end();

  const protos = loadEnvoyProtos();
  const client = new protos.envoy.service.auth.v3.Authorization(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
  const checkOnce = (i: number) =>
    new Promise<number>((resolve, reject) => {
      const started = process.hrtime.bigint();
      client.Check(
        {
          attributes: {
            request: { http: { method: 'GET', path: '/hello', headers: { authorization: `Bearer ${keys[i % keys.length]}`, 'x-request-id': String(i) } } },
          },
        },
        (err, res) => {
          if (err) return reject(err);
          if (res?.status?.code !== 0) return reject(new Error(`denied: ${res?.deniedResponse?.body}`));
          resolve(Number(process.hrtime.bigint() - started));
        },
      );
    });

  // Warm the cache (every key once) and the JIT.
  for (let i = 0; i < keys.length * 3; i++) await checkOnce(i);
  const fixed: number[] = [];

  // Checks at a fixed arrival rate for `secs`, latencies (ns) into `sink`.
  let sequence = 0;
  const runFixed = async (secs: number, sink: number[]) => {
    let errors = 0;
    const total = Math.round(rate * secs);
    const start = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      let sent = 0;
      let done = 0;
      const intervalNs = 1e9 / rate;
      const tick = () => {
        const due = Math.min(total, Math.floor(Number(process.hrtime.bigint() - start) / intervalNs) + 1);
        while (sent < due) {
          sent++;
          checkOnce(sequence++)
            .then((ns) => sink.push(ns))
            .catch(() => errors++)
            .finally(() => {
              if (++done === total) resolve();
            });
        }
        // A 1 ms timer, not a busy loop: the load generator must not starve the server of CPU.
        if (sent < total) setTimeout(tick, 1);
      };
      tick();
    });
    return { secs: Number(process.hrtime.bigint() - start) / 1e9, errors };
  };
  if (warmupSeconds > 0) await runFixed(warmupSeconds, []);

  // Redis work per Check, from the server's own INFO commandstats. The limiter sends one EVALSHA
  // per Check (one round trip); Redis counts the commands the script runs inside it as well, so
  // those are listed by name beside it.
  const redis = new Redis(stores.redisUrl);
  const redisCounters = async () => {
    const counts: Record<string, number> = {};
    for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) {
      if (m[1] !== 'info') counts[m[1]!] = Number(m[2]);
    }
    return counts;
  };
  // Redis's own CPU seconds (user + system, INFO cpu): a figure that holds up on a busy machine,
  // unlike Checks/s, and the one to compare with envoyproxy/ratelimit's Redis cost.
  const redisCpu = async () => {
    const info = await redis.info('cpu');
    const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 0);
    return field('used_cpu_user') + field('used_cpu_sys');
  };
  const driverCpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const redisBefore = await redisCounters();
  const redisCpuBefore = await redisCpu();

  // Where a slow Check spent its time: the service's own Check-duration histogram (request in to
  // response out, in the service) and both processes' event-loop delay. A Check slow at the
  // driver but fast in the service waited in a socket or an event loop, not in Tollgate's code.
  const scrape = async () => (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const serverBuckets = (text: string) => {
    const counts = new Map<string, number>();
    for (const m of text.matchAll(/^tollgate_authz_check_duration_seconds_bucket\{([^}]*)\} (\d+)/gm)) {
      const le = /le="([^"]+)"/.exec(m[1]!)![1]!;
      counts.set(le, (counts.get(le) ?? 0) + Number(m[2]));
    }
    return counts;
  };
  const metricValue = (text: string, name: string) => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const bucketsBefore = serverBuckets(await scrape()); // also resets the service's event-loop histogram
  const driverLoop = monitorEventLoopDelay({ resolution: 1 });
  driverLoop.enable();

  // 1. A fixed arrival rate, as Envoy would send it: latency at a known load. After the warm-up
  // below, so the figures are the steady state, not the first second in which V8 optimises the
  // concurrent paths and both heaps grow (tails of 100+ ms there, none of it seen again).
  const { secs: fixedSecs, errors } = await runFixed(seconds, fixed);
  driverLoop.disable();
  if (opts.latencies) writeFileSync(opts.latencies, JSON.stringify(fixed.map((ns) => ns / 1e6)));
  const afterText = await scrape();
  const bucketsAfter = serverBuckets(afterText);
  const serverChecks = (bucketsAfter.get('+Inf') ?? 0) - (bucketsBefore.get('+Inf') ?? 0);
  // Share of the fixed-rate Checks the service itself took longer than each bound to decide.
  const serverSlowerThan: Record<string, number> = {};
  for (const [le, n] of bucketsAfter) {
    if (le === '+Inf') continue;
    const within = n - (bucketsBefore.get(le) ?? 0);
    serverSlowerThan[`${Number(le) * 1000}ms`] = Number((1 - within / Math.max(1, serverChecks)).toFixed(4));
  }
  const ms = (s: number | undefined) => (s === undefined ? undefined : Number((s * 1000).toFixed(3)));
  const eventLoop = {
    // Delay beyond the 1 ms sampling interval, in ms.
    driver: {
      p50: Number((driverLoop.percentile(50) / 1e6).toFixed(3)),
      p99: Number((driverLoop.percentile(99) / 1e6).toFixed(3)),
      max: Number((driverLoop.max / 1e6).toFixed(3)),
    },
    // prom-client samples at 10 ms resolution and resets at each scrape: this is the phase alone.
    service: {
      p50: ms(metricValue(afterText, 'tollgate_nodejs_eventloop_lag_p50_seconds')),
      p99: ms(metricValue(afterText, 'tollgate_nodejs_eventloop_lag_p99_seconds')),
      max: ms(metricValue(afterText, 'tollgate_nodejs_eventloop_lag_max_seconds')),
    },
  };
  const redisCpuAfter = await redisCpu();
  const redisAfter = await redisCounters();
  const perCheck = (n: number) => Number((n / Math.max(1, fixed.length + errors)).toFixed(3));
  const redisPerCheck: Record<string, number> = {};
  for (const [cmd, calls] of Object.entries(redisAfter)) {
    const d = calls - (redisBefore[cmd] ?? 0);
    if (d > 0) redisPerCheck[cmd] = perCheck(d);
  }
  const redisCommandsPerCheck = Number(
    Object.values(redisPerCheck)
      .reduce((a, b) => a + b, 0)
      .toFixed(3),
  );
  const redisCpuUsPerCheck = Number(perCheck((redisCpuAfter - redisCpuBefore) * 1e6).toFixed(1));

  // 2. Closed loop at each concurrency: the most Checks per second this machine sustains, and
  // what queueing does to latency as more Checks are in flight.
  const closedLoop = [];
  for (const concurrency of concurrencies) {
    const closed: number[] = [];
    const deadline = Date.now() + Math.min(seconds, 10) * 1000;
    const cpu0 = driverCpu();
    const redisCpu0 = await redisCpu();
    const serverCpu = cpuSampler([{ label: 'authz-service', pids: () => [service.pid] }]);
    const startClosed = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (Date.now() < deadline) closed.push(await checkOnce(sequence++));
      }),
    );
    const closedSecs = Number(process.hrtime.bigint() - startClosed) / 1e9;
    const serverPct = serverCpu.stop().perProcess['authz-service'];
    const redisCpuSecs = (await redisCpu()) - redisCpu0;
    closedLoop.push({
      concurrency,
      per_s: Math.round(closed.length / closedSecs),
      checks: closed.length,
      latency_ms: percentiles(closed),
      // % of one core: authz-service is one Node process, so near 100% means it is the limit.
      server_cpu_pct: serverPct,
      // CPU per Check varies far less with the machine's other load than Checks/s do.
      server_cpu_us_per_check: Math.round(((serverPct ?? 0) / 100 / (closed.length / closedSecs)) * 1e6),
      redis_cpu_us_per_check: Number(((redisCpuSecs * 1e6) / Math.max(1, closed.length)).toFixed(1)),
      driver_cpu_pct: Math.round(((driverCpu() - cpu0) / closedSecs) * 100),
    });
  }
  client.close();
  await redis.quit();

  console.log(
    JSON.stringify(
      {
        benchmark: 'check',
        machine: {
          cpus: os.cpus().length,
          model: os.cpus()[0]?.model,
          node: process.version,
          load_average: { before: loadBefore, after: os.loadavg().map((l) => Number(l.toFixed(2))) },
        },
        ...(serviceNice !== undefined ? { service_nice: serviceNice } : {}),
        fixed_rate: {
          target_per_s: rate,
          achieved_per_s: Math.round(fixed.length / fixedSecs),
          checks: fixed.length,
          errors,
          latency_ms: percentiles(fixed),
          server_share_slower_than: serverSlowerThan,
          event_loop_delay_ms: eventLoop,
        },
        redis_per_check: redisPerCheck,
        // At the fixed rate: every command Redis ran per Check (the EVALSHA and those inside it),
        // and its CPU time per Check.
        redis_commands_per_check: redisCommandsPerCheck,
        redis_cpu_us_per_check: redisCpuUsPerCheck,
        closed_loop: closedLoop,
      },
      null,
      2,
    ),
  );
} finally {
  await service.stop();
  await stores.stop();
}
