// The gateway benchmark: the same load, from oha, through
//   (a) Envoy alone → backend-hello                            (no authorizer at all)
//   (d) Envoy + no-op ext_authz: (b)'s Envoy configuration and access logs to billing-sidecar,
//       with bench/noop-authz (Go) allowing every Check at once: the limit (b) is measured against
//   (b) Envoy + Tollgate: authz-service Check, Redis limits, access logs to billing-sidecar
//   (c) Envoy + OPA's Envoy plugin + Envoy's rate-limit filter to envoyproxy/ratelimit on Redis
// all on loopback, interleaved round by round (a d b c a d b c …) so drift in the machine's load
// hits every setup alike. Run through `pnpm bench:gateway`, which installs the tools first.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import {
  REPO_ROOT,
  freePort,
  httpOk,
  redisServerPid,
  startBenchStores,
  startEnvoy,
  startNodeService,
  waitFor,
  waitForLive,
  cpuSampler,
  processTree,
  type Endpoint,
  type ManagedProcess,
  type Watched,
} from '@tollgate/devstack';
import { startAltStack } from './alt-stack.js';
import { startNoopAuthz } from './noop-authz.js';

import { createBenchKeys, type BenchKey } from './keys.js';
import { limitReport, loadLabel, parseLoads, targetsReport } from './targets.js';
import { SCALE_HEAD, cpusFor, parseCpuList, parseScale, scaleRows } from './scale.js';
import { runOha, type LoadResult } from './oha.js';
import { profilesIn, summariseProfile } from './profile.js';
import { requireBenchTool } from './tools.js';

const HELP = `pnpm bench:gateway [options]

  --seconds N       length of each measured run (default 8)
  --rounds N        measured runs per setup, interleaved a d b c a d b c … (default 3)
  --warmup N        seconds of unmeasured load per setup before the first round (default 3)
  --concurrency N   connections oha keeps busy (default 32)
  --rate LIST       the loads to measure, one after the other, each \`max\` (as many requests
                    as the connections carry) or N: N requests/s in all (oha -q, latencies
                    corrected for coordinated omission), the latency a request gains at a set
                    load rather than at saturation (default max,1000)
  --threads N       oha worker threads (default 1: on a 2-core machine the load generator
                    competes with the gateway for CPU, so it gets as little as drives the load)
  --keys N          keys in the store and in OPA's data (default 1000)
  --authz-replicas N  authz-service processes Envoy balances Checks over in Envoy + Tollgate
                    (default 1; the CPU table adds them up)
  --authz-cpus LIST pin authz-service processes to CPUs (taskset -c), one entry per process
                    in turn, reused round-robin: "0,1" puts the first on CPU 0, the second on
                    CPU 1; "0-1" lets a process use either (default: not pinned)
  --scale LIST      after the comparison, measure Envoy + Tollgate saturated with each number
                    of authz-service processes in LIST (e.g. 1,2), --rounds × --seconds each,
                    interleaved, and print throughput per process count
  --setups LIST     any of alone,noop,tollgate,opa (default all four, in that order): noop is
                    Tollgate's Envoy configuration with an ext_authz server that allows every
                    Check at once (bench/noop-authz), the limit Tollgate is measured against
  --path PATH       request path (default /hello)
  --json FILE       also write every round's figures to FILE
  --profile DIR     run authz-service (and billing-sidecar) under node --cpu-prof, write the
                    profiles to DIR and print where their CPU time went
`;

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '32' },
    rate: { type: 'string', default: 'max,1000' },
    threads: { type: 'string', default: '1' },
    keys: { type: 'string', default: '1000' },
    'authz-replicas': { type: 'string', default: '1' },
    'authz-cpus': { type: 'string' },
    scale: { type: 'string' },
    setups: { type: 'string', default: 'alone,noop,tollgate,opa' },
    path: { type: 'string', default: '/hello' },
    json: { type: 'string' },
    profile: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function positive(name: string, raw: string, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    process.stderr.write(`--${name} must be a whole number from 1 to ${max} (got ${raw})\n\n${HELP}`);
    process.exit(2);
  }
  return n;
}
const seconds = positive('seconds', args.seconds, 600);
const rounds = positive('rounds', args.rounds, 50);
const warmup = Number(args.warmup) === 0 ? 0 : positive('warmup', args.warmup, 120);
const concurrency = positive('concurrency', args.concurrency, 1024);
const parsedLoads = parseLoads(args.rate);
if (typeof parsedLoads === 'string') {
  process.stderr.write(`${parsedLoads}\n\n${HELP}`);
  process.exit(2);
}
const loads = parsedLoads;
const threads = positive('threads', args.threads, 64);
const keyCount = positive('keys', args.keys, 1_000_000);
const authzReplicas = positive('authz-replicas', args['authz-replicas'], 8);
const orExit = <T>(parsed: T | string): T => {
  if (typeof parsed !== 'string') return parsed;
  process.stderr.write(`${parsed}\n\n${HELP}`);
  process.exit(2);
};
const scale = args.scale === undefined ? [] : orExit(parseScale(args.scale));
const authzCpus = args['authz-cpus'] === undefined ? null : orExit(parseCpuList(args['authz-cpus'], cpus().length));
// The comparison's Envoy + Tollgate uses the first --authz-replicas of them; --scale, the first N.
const authzProcesses = Math.max(authzReplicas, ...scale);
const SETUP_NAMES = ['alone', 'noop', 'tollgate', 'opa'] as const;
type SetupName = (typeof SETUP_NAMES)[number];
const chosen = args.setups.split(',').map((s) => s.trim());
for (const s of chosen) {
  if (!(SETUP_NAMES as readonly string[]).includes(s)) {
    process.stderr.write(`--setups: unknown setup "${s}" (known: ${SETUP_NAMES.join(', ')})\n`);
    process.exit(2);
  }
}
const setupNames = chosen as SetupName[];

// Limits no run can reach (a 30 s run at 50,000 req/s is 1.5 M), so nothing is refused, yet
// every request still goes through the limiter's Redis round trip.
const LIMITS = { perMinute: 100_000_000, perDay: 1_000_000_000 };

interface Setup {
  name: SetupName;
  title: string;
  url: string;
  /** What this setup is expected to answer without a key (Envoy alone lets everything through). */
  statusWithoutKey: number;
  watched: Watched[];
  note?: string;
  /** Its access logs go to billing-sidecar, which must record the requests it serves. */
  metered?: boolean;
}

const say = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const oha = requireBenchTool('oha');
const hashSecret = randomBytes(32).toString('hex');
const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-gateway-'));
const stops: (() => Promise<unknown>)[] = [];
const cleanup = async () => {
  for (const s of stops.reverse()) await s().catch((e: Error) => say(`cleanup: ${e.message}`));
  rmSync(dir, { recursive: true, force: true });
};
// Ctrl-C still stops every process this script started.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => void cleanup().finally(() => process.exit(130)));
}

const profileDir = args.profile ? resolve(args.profile) : null;
if (profileDir) mkdirSync(profileDir, { recursive: true });

function nodeService(name: string, pkg: string, env: Record<string, string>, profiled = false, pinTo: string | null = null): ManagedProcess {
  // One directory per service: Node names each thread's profile itself (tsx's module loader
  // runs on a thread of its own and writes a profile too).
  const profiling = profiled && profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(profileDir, name)] : [];
  const p = startNodeService({ name, pkg, nodeFlags: profiling, cpus: pinTo ?? undefined, env: { ...process.env, LOG_LEVEL: 'warn', ...env } });
  stops.push(() => p.stop());
  return p;
}

const one = (label: string, p: { pid: number }): Watched => ({ label, pids: () => [p.pid] });

/** billing-sidecar on the bench's database; without it a setup is measured without the ALS leg. */
async function startBillingSidecar(databaseUrl: string): Promise<{ als: Endpoint | null; note?: string; watched: Watched[] }> {
  if (!existsSync(join(REPO_ROOT, 'billing-sidecar', 'src', 'main.ts'))) {
    return { als: null, note: 'billing-sidecar/src/main.ts does not exist yet: measured WITHOUT the access-log leg', watched: [] };
  }
  const grpcPort = await freePort();
  const httpPort = await freePort();
  const sidecar = nodeService(
    'billing-sidecar',
    'billing-sidecar',
    { DATABASE_URL: databaseUrl, BILLING_HOST: '127.0.0.1', BILLING_GRPC_PORT: String(grpcPort), BILLING_HTTP_PORT: String(httpPort) },
    true,
  );
  try {
    await waitForLive(sidecar, `http://127.0.0.1:${httpPort}`);
    return { als: { host: '127.0.0.1', port: grpcPort }, watched: [one('billing-sidecar', sidecar)] };
  } catch (e) {
    await sidecar.stop();
    return { als: null, note: `billing-sidecar did not start (${(e as Error).message.split('\n')[0]}): measured WITHOUT the access-log leg`, watched: [] };
  }
}

function machine() {
  const model = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  return { cpus: cpus().length, model, node: process.version };
}

const loadNow = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

async function main(): Promise<void> {
  const m = machine();
  say(`${m.cpus} × ${m.model}; load average ${loadNow()}`);
  if (loadavg()[0]! > 0.5) say('the machine is busy (1-minute load average above 0.5): figures will be lower and noisier than on a quiet machine');

  const stores = await startBenchStores('gateway');
  stops.push(() => stores.stop());
  const redis = new Redis(stores.redisUrl, { lazyConnect: true });
  await redis.connect();
  stops.push(() => redis.quit());
  // CPU of Redis and Postgres is sampled only when this script started them on this machine.
  let redisWatch: Watched = { label: 'redis', pids: () => [] };
  let postgresWatch: Watched = { label: 'postgres', pids: () => [] };
  if (!process.env.REDIS_URL) {
    const redisPid = await redisServerPid(redis);
    redisWatch = { label: 'redis', pids: () => [redisPid] };
  }
  if (!process.env.DATABASE_URL) {
    const db = new pg.Client({ connectionString: stores.databaseUrl });
    await db.connect();
    const servingPid = (await db.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    // Each Postgres connection is served by a child of the postmaster: watch the whole tree.
    // (Read while this connection, and so its serving process, still exists.)
    const postmasterPid = Number(readFileSync(`/proc/${servingPid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
    await db.end();
    postgresWatch = { label: 'postgres', pids: () => processTree(postmasterPid) };
  }

  const backendPort = await freePort();
  const backend: Endpoint = { host: '127.0.0.1', port: backendPort };
  const hello = nodeService('backend-hello', 'backend-hello', { BACKEND_PORT: String(backendPort), BACKEND_HOST: '127.0.0.1' });
  await waitFor('backend-hello', () => httpOk(`http://127.0.0.1:${backendPort}/health`), { child: hello, timeoutMs: 60_000 });

  // authz-service creates the schema the keys are stored in, so it starts whenever keys are
  // needed; under setup (c) alone it merely idles.
  let keys: BenchKey[] = [];
  const authzEndpoints: Endpoint[] = [];
  const authz: ManagedProcess[] = [];
  if (setupNames.some((s) => s !== 'alone') || scale.length) {
    for (let i = 0; i < authzProcesses; i++) {
      const grpcPort = await freePort();
      const httpPort = await freePort();
      const name = authzProcesses > 1 ? `authz-service-${i + 1}` : 'authz-service';
      const p = nodeService(
        name,
        'authz-service',
        {
          DATABASE_URL: stores.databaseUrl,
          REDIS_URL: stores.redisUrl,
          KEY_HASH_SECRETS: hashSecret,
          ADMIN_TOKEN: randomBytes(24).toString('hex'),
          AUTHZ_HOST: '127.0.0.1',
          AUTHZ_GRPC_PORT: String(grpcPort),
          AUTHZ_HTTP_PORT: String(httpPort),
        },
        true,
        cpusFor(i, authzCpus),
      );
      // One at a time: the first creates the schema, and two migrations racing would be a test of
      // the migrator, not of the gateway.
      await waitForLive(p, `http://127.0.0.1:${httpPort}`);
      authz.push(p);
      authzEndpoints.push({ host: '127.0.0.1', port: grpcPort });
    }
    say(`creating ${keyCount} keys`);
    keys = await createBenchKeys({ databaseUrl: stores.databaseUrl, hashSecret, count: keyCount, ...LIMITS });
  }
  // Every request carries the same key: oha sends fixed headers. One hot key is also the
  // worst case for a per-key counter, for both limiters alike.
  const key = keys[0]?.plaintext ?? `sk_${'0'.repeat(30)}`;

  // One billing-sidecar takes the access logs of every setup that has them (the setups run one
  // at a time), started when the first of them needs it.
  let sidecarStarted: Promise<{ als: Endpoint | null; note?: string; watched: Watched[] }> | undefined;
  const billingSidecar = () => (sidecarStarted ??= startBillingSidecar(stores.databaseUrl));
  // Envoy + Tollgate and Envoy + no-op ext_authz run the same rendering of envoy/envoy.yaml
  // (ext_authz, the gRPC access log to billing-sidecar and the JSON file log), differing only
  // in which server the authz cluster points at.
  const tollgateEnvoy = (setupDir: string, ports: { listen: Endpoint; adminPort: number }, authzAt: Endpoint[], als: Endpoint | null) =>
    startEnvoy({ dir: join(dir, setupDir), render: { ...ports, backend, authz: authzAt, als } });

  const setups: Setup[] = [];
  for (const name of setupNames) {
    const listen = { host: '127.0.0.1', port: await freePort() };
    const adminPort = await freePort();
    if (name === 'alone') {
      const envoy = await startEnvoy({ dir: join(dir, 'alone'), render: { listen, adminPort, backend, authz: null, als: null } });
      stops.push(() => envoy.process.stop());
      setups.push({
        name,
        title: 'Envoy alone',
        url: envoy.url,
        statusWithoutKey: 200,
        watched: [one('envoy', envoy.process), one('backend-hello', hello)],
      });
    } else if (name === 'noop') {
      const sidecar = await billingSidecar();
      const noop = await startNoopAuthz({ userId: keys[0]!.userId, keyId: keys[0]!.id, limits: LIMITS });
      stops.push(() => noop.process.stop());
      const envoy = await tollgateEnvoy('noop', { listen, adminPort }, [noop.endpoint], sidecar.als);
      stops.push(() => envoy.process.stop());
      setups.push({
        name,
        title: `Envoy + no-op ext_authz${sidecar.als ? '' : ' (no ALS)'}`,
        url: envoy.url,
        // It allows everything: what it saves is all the work of deciding.
        statusWithoutKey: 200,
        note: sidecar.note,
        metered: sidecar.als !== null,
        watched: [one('envoy', envoy.process), one('backend-hello', hello), one('noop-authz', noop.process), ...sidecar.watched, postgresWatch],
      });
    } else if (name === 'tollgate') {
      const sidecar = await billingSidecar();
      const envoy = await tollgateEnvoy('tollgate', { listen, adminPort }, authzEndpoints.slice(0, authzReplicas), sidecar.als);
      stops.push(() => envoy.process.stop());
      setups.push({
        name,
        title: `${sidecar.als ? 'Envoy + Tollgate' : 'Envoy + Tollgate (no ALS)'}${authzReplicas > 1 ? ` (${authzReplicas} authz)` : ''}`,
        url: envoy.url,
        statusWithoutKey: 401,
        note: sidecar.note,
        metered: sidecar.als !== null,
        watched: [
          one('envoy', envoy.process),
          one('backend-hello', hello),
          { label: 'authz-service', pids: () => authz.slice(0, authzReplicas).map((p) => p.pid) },
          ...sidecar.watched,
          redisWatch,
          postgresWatch,
        ],
      });
    } else {
      const alt = await startAltStack({ dir: join(dir, 'opa'), backend, redisUrl: stores.redisUrl, keys, hashSecret, limits: LIMITS });
      stops.push(() => alt.stop());
      setups.push({
        name,
        title: 'Envoy + OPA + ratelimit',
        url: alt.envoy.url,
        statusWithoutKey: 401,
        watched: [one('envoy', alt.envoy.process), one('backend-hello', hello), one('opa', alt.opa), one('ratelimit', alt.ratelimit), redisWatch],
      });
    }
  }

  // Each setup must actually do its job before its speed means anything, and a metered one's
  // requests must reach the usage table (the no-op setup's too: its metadata is the real thing).
  const db = new pg.Client({ connectionString: stores.databaseUrl });
  await db.connect();
  const usageRows = async () =>
    Number((await db.query<{ n: string }>('select count(*) as n from usage_records where key_id = $1', [keys[0]?.id ?? ''])).rows[0]!.n);
  try {
    for (const s of setups) {
      const url = `${s.url}${args.path}`;
      const rowsBefore = s.metered ? await usageRows() : 0;
      const withKey = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
      const without = await fetch(url);
      if (withKey.status !== 200 || without.status !== s.statusWithoutKey) {
        throw new Error(
          `${s.title}: expected 200 with the key and ${s.statusWithoutKey} without, got ${withKey.status} and ${without.status}: ${await withKey.text()}`,
        );
      }
      if (s.metered) {
        await waitFor(`${s.title}: a usage record of its request`, async () => (await usageRows()) > rowsBefore, { timeoutMs: 15_000, intervalMs: 200 });
      }
      if (s.note) say(`${s.title}: ${s.note}`);
    }
  } finally {
    await db.end();
  }

  const runOnce = async (s: Setup, secs: number, rate: number | undefined) => {
    let ohaPid = 0;
    const watched = [...s.watched, { label: 'oha', pids: () => (ohaPid ? [ohaPid] : []) }];
    // CPU is sampled while oha runs, leaving out its first and last second (connection set-up,
    // drain): oha's own figures can only be read while it is alive.
    const margin = secs >= 4 ? 1000 : 0;
    let cpu: ReturnType<ReturnType<typeof cpuSampler>['stop']> | null = null;
    const redisBefore = await redisCommands(redis);
    const result = await runOha({
      bin: oha,
      url: `${s.url}${args.path}`,
      headers: { authorization: `Bearer ${key}` },
      seconds: secs,
      concurrency,
      threads,
      rate,
      onStart: (pid) => {
        ohaPid = pid;
        setTimeout(() => {
          const sampler = cpuSampler(watched);
          setTimeout(() => (cpu = sampler.stop()), secs * 1000 - 2 * margin - 100);
        }, margin);
      },
    });
    const redisAfter = await redisCommands(redis);
    return {
      result,
      cpu: cpu ?? { perProcess: {}, machineBusyPct: 0 },
      redisPerRequest: Object.fromEntries(
        Object.entries(redisAfter)
          .map(([cmd, n]) => [cmd, (n - (redisBefore[cmd] ?? 0)) / Math.max(1, result.ok + result.errors)] as const)
          // Health probes and the like round to nothing per request.
          .filter(([, per]) => per >= 0.005),
      ),
    };
  };

  if (warmup > 0) {
    for (const s of setups) {
      say(`warm-up: ${s.title}, ${warmup} s`);
      await runOnce(s, warmup, loads[0]);
    }
  }
  const loadBefore = loadNow();
  const measured: { rate: number | undefined; runs: Map<SetupName, Awaited<ReturnType<typeof runOnce>>[]> }[] = [];
  for (const rate of loads) {
    const runs = new Map<SetupName, Awaited<ReturnType<typeof runOnce>>[]>(setups.map((s) => [s.name, []]));
    for (let r = 1; r <= rounds; r++) {
      for (const s of setups) {
        say(`round ${r}/${rounds}: ${s.title}, ${seconds} s ${loadLabel(rate, concurrency)}`);
        const run = await runOnce(s, seconds, rate);
        runs.get(s.name)!.push(run);
        say(`  ${Math.round(run.result.perSecond)} req/s, p50 ${run.result.latencyMs.p50} ms, p99 ${run.result.latencyMs.p99} ms, errors ${run.result.errors}`);
      }
    }
    measured.push({ rate, runs });
  }
  const loadAfter = loadNow();

  // Throughput per authz-service process count: one Envoy + Tollgate per count, on the first N
  // processes, measured saturated, interleaved like the comparison.
  const scaleRuns = new Map<number, Awaited<ReturnType<typeof runOnce>>[]>(scale.map((n) => [n, []]));
  if (scale.length) {
    const sidecar = await billingSidecar();
    const scaleSetups = new Map<number, Setup>();
    for (const n of scale) {
      const envoy = await tollgateEnvoy(
        `scale-${n}`,
        { listen: { host: '127.0.0.1', port: await freePort() }, adminPort: await freePort() },
        authzEndpoints.slice(0, n),
        sidecar.als,
      );
      stops.push(() => envoy.process.stop());
      scaleSetups.set(n, {
        name: 'tollgate',
        title: `Envoy + Tollgate, ${n} authz-service process${n > 1 ? 'es' : ''}`,
        url: envoy.url,
        statusWithoutKey: 401,
        watched: [one('envoy', envoy.process), { label: 'authz-service', pids: () => authz.slice(0, n).map((p) => p.pid) }, redisWatch],
      });
    }
    if (scale.at(-1)! > m.cpus) say(`--scale: ${scale.at(-1)} processes on ${m.cpus} CPUs: the last points share cores`);
    // The processes past --authz-replicas have served nothing yet: warm their JIT and caches too.
    if (warmup > 0) {
      for (const s of scaleSetups.values()) {
        say(`warm-up: ${s.title}, ${warmup} s`);
        await runOnce(s, warmup, undefined);
      }
    }
    for (let r = 1; r <= rounds; r++) {
      for (const [n, s] of scaleSetups) {
        say(`scale round ${r}/${rounds}: ${s.title}, ${seconds} s ${loadLabel(undefined, concurrency)}`);
        const run = await runOnce(s, seconds, undefined);
        scaleRuns.get(n)!.push(run);
        say(`  ${Math.round(run.result.perSecond)} req/s, p99 ${run.result.latencyMs.p99} ms`);
      }
    }
  }

  const reports = measured.map(({ rate, runs }) => ({ rate, summary: setups.map((s) => summarise(s, runs.get(s.name)!)) }));
  for (const r of reports) printTables(r.summary, r.rate, { m, loadBefore, loadAfter });
  process.stdout.write(`${limitReport(reports, concurrency).join('\n')}\n`);
  if (scale.length) {
    const points = scale.map((n) => {
      const sum = summarise({ name: 'tollgate', title: '', url: '', statusWithoutKey: 401, watched: [] }, scaleRuns.get(n)!);
      return {
        processes: n,
        perSecond: sum.perSecond,
        perSecondRange: sum.perSecondRange,
        p99: sum.p99,
        authzCpuPct: sum.cpu['authz-service'] ?? 0,
        authzUsPerRequest: sum.cpuPerRequestUs['authz-service'] ?? 0,
        machineBusyPct: sum.machineBusyPct,
      };
    });
    const pinned = authzCpus ? `, authz-service pinned with taskset -c ${authzCpus.join(' / ')}` : ', authz-service not pinned';
    process.stdout.write(
      `\nEnvoy + Tollgate by authz-service processes: ${rounds} × ${seconds} s each, interleaved, ${loadLabel(undefined, concurrency)}${pinned}; ${m.cpus} CPUs:\n\n${table(SCALE_HEAD, scaleRows(points))}\n`,
    );
  }
  process.stdout.write(`${targetsReport(reports, concurrency).join('\n')}\n`);
  if (args.json) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      args.json,
      JSON.stringify(
        {
          machine: m,
          loadBefore,
          loadAfter,
          seconds,
          rounds,
          concurrency,
          threads,
          loads: measured.map(({ rate, runs }, i) => ({ rate: rate ?? null, summary: reports[i]!.summary, runs: Object.fromEntries(runs) })),
        },
        null,
        2,
      ),
    );
    say(`wrote ${args.json}`);
  }
}

/** Redis's INFO commandstats: calls per command so far (the benchmark's own INFO left out). */
async function redisCommands(redis: Redis): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) {
    if (m[1] !== 'info') counts[m[1]!] = Number(m[2]);
  }
  return counts;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function summarise(
  s: Setup,
  rs: { result: LoadResult; cpu: { perProcess: Record<string, number>; machineBusyPct: number }; redisPerRequest: Record<string, number> }[],
) {
  const ok = rs.reduce((a, r) => a + r.result.ok, 0);
  const secs = rs.reduce((a, r) => a + r.result.seconds, 0);
  const errors = rs.reduce((a, r) => a + r.result.errors, 0);
  const errorKinds: Record<string, number> = {};
  for (const r of rs) for (const [k, n] of Object.entries(r.result.errorKinds)) errorKinds[k] = (errorKinds[k] ?? 0) + n;
  const cpu: Record<string, number> = {};
  // CPU time per request (µs) depends little on what else the machine runs, unlike req/s, so it
  // is the figure that carries over from a busy machine: it is each run's CPU share over its rate.
  const cpuPerRequestUs: Record<string, number> = {};
  for (const label of Object.keys(rs[0]!.cpu.perProcess)) {
    cpu[label] = Math.round(median(rs.map((r) => r.cpu.perProcess[label] ?? 0)));
    cpuPerRequestUs[label] = Math.round(median(rs.map((r) => ((r.cpu.perProcess[label] ?? 0) / 100 / r.result.perSecond) * 1e6)));
  }
  return {
    name: s.name,
    title: s.title,
    note: s.note,
    perSecond: ok / secs,
    perSecondRange: [Math.min(...rs.map((r) => r.result.perSecond)), Math.max(...rs.map((r) => r.result.perSecond))],
    // Percentiles cannot be merged across runs; the median run's figure is reported.
    p50: median(rs.map((r) => r.result.latencyMs.p50)),
    p99: median(rs.map((r) => r.result.latencyMs.p99)),
    p999: median(rs.map((r) => r.result.latencyMs['p99.9'])),
    errors,
    errorKinds,
    redisPerRequest: Object.fromEntries(
      [...new Set(rs.flatMap((r) => Object.keys(r.redisPerRequest)))].map((cmd) => [cmd, median(rs.map((r) => r.redisPerRequest[cmd] ?? 0))]),
    ),
    cpu,
    cpuPerRequestUs,
    machineBusyPct: median(rs.map((r) => r.cpu.machineBusyPct)),
  };
}

type Summary = ReturnType<typeof summarise>;

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(head), `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

function printTables(summary: Summary[], rate: number | undefined, ctx: { m: ReturnType<typeof machine>; loadBefore: string; loadAfter: string }) {
  const f = (n: number, d = 2) => n.toFixed(d);
  const alone = summary.find((x) => x.name === 'alone');
  const noop = summary.find((x) => x.name === 'noop');
  const out: string[] = [];
  out.push(
    `\nGateway side by side: ${rounds} × ${seconds} s per setup, interleaved; oha ${concurrency} connections, ${threads} thread(s)${rate ? `, fixed ${rate} req/s (latency corrected for coordinated omission)` : ''}; GET ${args.path}`,
  );
  out.push(`${ctx.m.cpus} × ${ctx.m.model}; Node ${ctx.m.node}; load average (1/5/15 min) ${ctx.loadBefore} before, ${ctx.loadAfter} after\n`);
  out.push(
    table(
      ['setup', 'req/s', 'range (runs)', 'p50 ms', 'p99 ms', 'p99.9 ms', 'errors', '× alone', '× no-op', '+p50 ms', 'Redis cmds/req'],
      summary.map((s) => [
        s.title,
        f(s.perSecond, 0),
        `${f(s.perSecondRange[0]!, 0)}–${f(s.perSecondRange[1]!, 0)}`,
        f(s.p50, 3),
        f(s.p99, 3),
        f(s.p999, 3),
        String(s.errors),
        alone ? f(s.perSecond / alone.perSecond) : '–',
        noop ? f(s.perSecond / noop.perSecond) : '–',
        alone ? f(s.p50 - alone.p50, 3) : '–',
        s.name === 'alone'
          ? '–'
          : f(
              Object.values(s.redisPerRequest).reduce((a, b) => a + b, 0),
              1,
            ),
      ]),
    ),
  );
  const labels = [...new Set(summary.flatMap((s) => Object.keys(s.cpu)))];
  out.push('\nCPU during the measured runs, % of one core (median run; 100% = one core busy):\n');
  out.push(
    table(
      ['setup', ...labels, 'machine busy'],
      summary.map((s) => [s.title, ...labels.map((l) => (l in s.cpu ? `${s.cpu[l]}%` : '–')), `${s.machineBusyPct}%`]),
    ),
  );
  out.push(`\nCPU time per request, µs (median run), and the rate that much CPU allows on ${ctx.m.cpus} otherwise idle cores:\n`);
  out.push(
    table(
      ['setup', ...labels, 'total', 'gateway only', 'ceiling req/s'],
      summary.map((s) => {
        const total = Object.values(s.cpuPerRequestUs).reduce((a, b) => a + b, 0);
        // What the gateway itself costs: everything but the load generator and the upstream.
        const gateway = total - (s.cpuPerRequestUs.oha ?? 0) - (s.cpuPerRequestUs['backend-hello'] ?? 0);
        return [
          s.title,
          ...labels.map((l) => (l in s.cpuPerRequestUs ? String(s.cpuPerRequestUs[l]) : '–')),
          String(total),
          String(gateway),
          total ? f((ctx.m.cpus * 1e6) / total, 0) : '–',
        ];
      }),
    ),
  );
  out.push('\nRedis commands per request, by name (INFO commandstats, which also counts the commands a Lua script runs):');
  for (const s of summary) {
    if (s.name === 'alone') continue;
    const byName = Object.entries(s.redisPerRequest)
      .map(([cmd, n]) => `${cmd} ${f(n)}`)
      .join(', ');
    out.push(`  ${s.title}: ${byName || 'none'}`);
  }
  for (const s of summary) {
    if (s.note) out.push(`\nNote (${s.title}): ${s.note}`);
    if (s.errors) out.push(`\nErrors (${s.title}): ${JSON.stringify(s.errorKinds)}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

try {
  await main();
} finally {
  await cleanup();
}
// The profiles are written as the services exit, so they are read after cleanup.
if (profileDir) {
  for (const path of profilesIn(profileDir)) process.stdout.write(`\n${path}\n${summariseProfile(path)}\n`);
}
