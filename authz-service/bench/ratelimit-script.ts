// Redis CPU per call of the rate-limit script, next to the round-trip floor (PING) and an empty
// script called with the same keys and arguments (what any EVALSHA costs before its body runs).
// Usage: pnpm bench:ratelimit-script [--rounds 5] [--requests 100000] [--concurrency 32]
//          [--keys 1000] [--baseline authz-service/test/fixtures/rate-limit-script-before.lua]
// --baseline also measures another script text, interleaved with the current one in every round,
// so a change to the script can be compared on the same noisy machine.
//
// The load comes from redis-benchmark (Debian's redis-tools, installed with redis-server), not
// from Node: it is a C client that keeps exactly --concurrency calls in flight, varies the key
// per call with __rand_int__, and uses little CPU of its own on a 2-core machine. The figure is
// Redis's own CPU (INFO cpu: used_cpu_user + used_cpu_sys, microsecond resolution) per call,
// so it does not depend on how fast the driver is, only on how Redis's work per call changes.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort, startRedis } from '@tollgate/devstack';
import { RATE_LIMIT_LUA } from '../src/check/rate-limit-script.js';

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    requests: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '32' },
    keys: { type: 'string', default: '1000' },
    baseline: { type: 'string' },
  },
});
const rounds = Number(opts.rounds);
const requests = Number(opts.requests);
const concurrency = Number(opts.concurrency);
const keyCount = Number(opts.keys);
for (const [name, v, max] of [
  ['rounds', rounds, 100],
  ['requests', requests, 10_000_000],
  ['concurrency', concurrency, 1024],
  ['keys', keyCount, 1_000_000],
] as const) {
  if (!Number.isInteger(v) || v < 1 || v > max) throw new Error(`--${name} takes a whole number from 1 to ${max}`);
}

function findBenchmark(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v redis-benchmark']).toString().trim();
  } catch {
    throw new Error('redis-benchmark not found: install the Debian package `redis-tools`.');
  }
}
const benchmarkBin = findBenchmark();

// ARGV as rate-limiter.ts sends it: per-minute, per-day, cost, minute ms, day ms, quota, quota cost.
const LIMITS = { minute: '1000000', day: '100000000', cost: '1', minuteMs: '60000', dayMs: '86400000' };
const shapes: { name: string; args: string[] }[] = [
  { name: 'minute+day, allowed', args: [LIMITS.minute, LIMITS.day, LIMITS.cost, LIMITS.minuteMs, LIMITS.dayMs, '0', '1'] },
  { name: 'minute+day+quota, allowed', args: [LIMITS.minute, LIMITS.day, LIMITS.cost, LIMITS.minuteMs, LIMITS.dayMs, '1000000000', '1'] },
  // 1 per minute: after each key's first call in a minute, every call is denied by the window.
  { name: 'minute+day, denied (minute)', args: ['1', LIMITS.day, LIMITS.cost, LIMITS.minuteMs, LIMITS.dayMs, '0', '1'] },
  // A quota of 1: after each key's first call this month, every call is denied by the quota.
  { name: 'minute+day+quota, denied (quota)', args: [LIMITS.minute, LIMITS.day, LIMITS.cost, LIMITS.minuteMs, LIMITS.dayMs, '1', '1'] },
];

interface Case {
  label: string;
  command: string[];
}

const dir = mkdtempSync(join(os.tmpdir(), 'tollgate-bench-rlscript-'));
const port = await freePort();
const server = await startRedis({ dir, port });
const redis = new Redis(server.url);

async function cpuSeconds(): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1]);
  return field('used_cpu_user') + field('used_cpu_sys');
}

const run = promisify(execFile);
/** Redis CPU µs per call of one case: `n` calls from `concurrency` connections. */
async function measure(c: Case, n: number): Promise<number> {
  const before = await cpuSeconds();
  const args = ['-h', '127.0.0.1', '-p', String(port), '-c', String(concurrency), '-n', String(n), '-r', String(keyCount), '-q', ...c.command];
  await run(benchmarkBin, args, { maxBuffer: 16 * 1024 * 1024 });
  return (((await cpuSeconds()) - before) * 1e6) / n;
}

try {
  const scripts: { label: string; sha: string }[] = [{ label: 'current', sha: (await redis.script('LOAD', RATE_LIMIT_LUA)) as string }];
  if (opts.baseline) scripts.push({ label: 'baseline', sha: (await redis.script('LOAD', readFileSync(opts.baseline, 'utf8'))) as string });
  const noop = (await redis.script('LOAD', 'return 1')) as string;

  // Each shape has keys of its own, shared by the scripts (they store the same fields), so a
  // denied shape's keys stay spent and an allowed shape's keys keep counting.
  const keysFor = (tag: string) => ['2', `bench:rl:{${tag}__rand_int__}`, `bench:quota:{${tag}__rand_int__}`];
  const cases: Case[] = [
    { label: 'PING (round-trip floor)', command: ['PING'] },
    { label: "EVALSHA 'return 1', same keys and args", command: ['EVALSHA', noop, ...keysFor('noop'), ...shapes[0]!.args] },
  ];
  shapes.forEach((shape, i) => {
    for (const s of scripts) cases.push({ label: `${s.label}: ${shape.name}`, command: ['EVALSHA', s.sha, ...keysFor(`s${i}`), ...shape.args] });
  });

  console.log(
    `Redis ${(/redis_version:(\S+)/.exec(await redis.info('server')) ?? [])[1]}, ${rounds} rounds of ${requests} calls per case, ` +
      `${concurrency} connections, ${keyCount} keys; load average before: ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );
  // redis-benchmark counts an error reply as a call like any other: check each script answers.
  for (const c of cases) {
    if (c.command[0] !== 'EVALSHA') continue;
    const [, sha, n, ...rest] = c.command;
    const reply = await redis.evalsha(sha!, n!, ...rest.map((a) => a.replace('__rand_int__', 'check')));
    if (!(reply === 1 || (Array.isArray(reply) && reply.length === 12))) throw new Error(`${c.label}: unexpected reply ${JSON.stringify(reply)}`);
  }
  // A first pass opens every key's windows (HKEYS, PEXPIRE) and spends the denied shapes' keys,
  // so the rounds measure the steady state of each shape.
  for (const c of cases) await measure(c, Math.min(requests, keyCount * 20));

  const samples = new Map<string, number[]>(cases.map((c) => [c.label, []]));
  for (let r = 0; r < rounds; r++) {
    // Cases run in turn within each round, so machine noise spreads over all of them alike.
    for (const c of cases) samples.get(c.label)!.push(await measure(c, requests));
  }

  const width = Math.max(...cases.map((c) => c.label.length));
  console.log(`${'Redis CPU per call (µs)'.padEnd(width)}     min  median     max`);
  const medians = new Map<string, number>();
  for (const c of cases) {
    const sorted = [...samples.get(c.label)!].sort((a, b) => a - b);
    const mid = sorted.length / 2;
    const median = sorted.length % 2 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    medians.set(c.label, median);
    const cols = [sorted[0]!, median, sorted[sorted.length - 1]!].map((v) => v.toFixed(1).padStart(7));
    console.log(`${c.label.padEnd(width)} ${cols.join(' ')}`);
  }
  if (opts.baseline) {
    console.log('current vs baseline (median):');
    for (const shape of shapes) {
      const cur = medians.get(`current: ${shape.name}`)!;
      const base = medians.get(`baseline: ${shape.name}`)!;
      console.log(`  ${shape.name}: ${(((cur - base) / base) * 100).toFixed(0)}%`);
    }
  }
} finally {
  redis.disconnect();
  await server.process.stop();
  rmSync(dir, { recursive: true, force: true });
}
