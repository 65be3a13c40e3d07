import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uniqueRedisPrefix } from '@tollgate/devstack';
import { RATE_LIMIT_LUA } from '../src/check/rate-limit-script.js';

// The rate-limit script was rewritten for Redis's CPU (plain locals instead of per-window tables
// and closures). This runs the version before the rewrite (a fixture copy) and the current one
// side by side, on the same generated calls against keys of their own, and requires the same
// reply, the same stored hash fields and values, and the same expiries after every call.
const infra = inject('infra');
let redis: Redis;
const BEFORE_LUA = readFileSync(new URL('./fixtures/rate-limit-script-before.lua', import.meta.url), 'utf8');

/**
 * The script with Redis's clock replaced by ARGV[8] (seconds) and ARGV[9] (microseconds), so both
 * versions see the same instant, and any instant: window and month boundaries on demand.
 */
function withInjectedTime(lua: string): string {
  const call = "redis.call('TIME')";
  expect(lua.split(call)).toHaveLength(2); // exactly one TIME call to replace
  return lua.replace(call, '{ ARGV[8], ARGV[9] }');
}

/** Deterministic, so a failure can be replayed from its seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Limits {
  minute: number;
  day: number;
  cost: number;
  quota: number;
  qcost: number;
}

beforeAll(() => {
  redis = new Redis(infra.redisUrl);
});
afterAll(() => redis?.disconnect());

type Reply = number[];
interface Observed {
  reply: Reply;
  rl: Record<string, string>;
  quota: Record<string, string>;
  rlTtl: number;
  quotaTtl: number;
}

/** Runs one script on its own keys and reads back what it left. */
function observe(pipe: ReturnType<Redis['pipeline']>, sha: string, keys: [string, string], argv: string[]): void {
  pipe.evalsha(sha, 2, ...keys, ...argv);
  pipe.hgetall(keys[0]);
  pipe.hgetall(keys[1]);
  pipe.pttl(keys[0]);
  pipe.pttl(keys[1]);
}

function unpackObserved(results: [Error | null, unknown][]): Observed {
  for (const [err] of results) if (err) throw err;
  const [reply, rl, quota, rlTtl, quotaTtl] = results.map(([, v]) => v);
  return {
    reply: reply as Reply,
    rl: rl as Record<string, string>,
    quota: quota as Record<string, string>,
    rlTtl: rlTtl as number,
    quotaTtl: quotaTtl as number,
  };
}

/** PTTL -2 (no key) and -1 (no expiry) exactly; expiries set within the same few ms, within 50 ms. */
function sameTtl(a: number, b: number): boolean {
  return a < 0 || b < 0 ? a === b : Math.abs(a - b) <= 50;
}

describe('rate-limit script, current vs before the rewrite', () => {
  it('decides, stores and replies the same on many generated call sequences', async () => {
    const shaBefore = (await redis.script('LOAD', withInjectedTime(BEFORE_LUA))) as string;
    const shaNow = (await redis.script('LOAD', withInjectedTime(RATE_LIMIT_LUA))) as string;
    const prefix = uniqueRedisPrefix(infra, 'rlscript');
    // A new seed each run, named in every failure; RL_DIFF_SEED=<seed> replays that run.
    const seed = Number(process.env.RL_DIFF_SEED ?? Date.now() % 2 ** 31);
    const rand = mulberry32(seed);
    const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const limits = (): Limits => ({
      minute: rand() < 0.25 ? 0 : int(1, 15),
      day: rand() < 0.25 ? 0 : int(1, 60),
      // The caller always sends 1; more shows the arithmetic does not depend on it.
      cost: rand() < 0.8 ? 1 : int(2, 3),
      quota: rand() < 0.4 ? 0 : int(1, 40),
      qcost: rand() < 0.7 ? 1 : int(2, 5),
    });
    // Instants in the future, so the quota's PEXPIREAT (a day past the month) keeps the hash.
    const from = Date.UTC(2027, 0, 1);
    const to = Date.UTC(2035, 0, 1);

    const seen = { allowed: 0, deniedRate: 0, deniedQuota: 0, deniedByMinute: 0, deniedByDay: 0, fieldsDropped: 0, monthChanged: 0, expirySet: 0 };
    for (let seq = 0; seq < 300; seq++) {
      const minuteMs = pick([50, 100, 250, 1000, 60_000]);
      const dayMs = pick([minuteMs * 3, minuteMs * 10, 86_400_000]);
      let now = from + Math.floor(rand() * (to - from));
      // A third of the sequences start in the last seconds of a month, to cross into the next.
      if (rand() < 0.34) {
        const d = new Date(now);
        now = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) - int(0, 3000);
      }
      let lim = limits();
      const keysBefore: [string, string] = [`${prefix}before:rl:{k${seq}}`, `${prefix}before:quota:{k${seq}}`];
      const keysNow: [string, string] = [`${prefix}now:rl:{k${seq}}`, `${prefix}now:quota:{k${seq}}`];
      let prevFields = 0;
      let prevMonth: string | undefined;
      for (let step = 0; step < 40; step++) {
        if (rand() < 0.05) lim = limits(); // the key's plan changed
        const r = rand();
        now += r < 0.15 ? 0 : r < 0.7 ? int(0, Math.ceil(minuteMs / 3)) : r < 0.95 ? int(0, Math.ceil(minuteMs * 1.5)) : int(minuteMs * 2, dayMs * 3);
        const argv = [lim.minute, lim.day, lim.cost, minuteMs, dayMs, lim.quota, lim.qcost, Math.floor(now / 1000), (now % 1000) * 1000 + int(0, 999)].map(
          String,
        );
        const pipe = redis.pipeline();
        observe(pipe, shaBefore, keysBefore, argv);
        observe(pipe, shaNow, keysNow, argv);
        const results = (await pipe.exec())!;
        const before = unpackObserved(results.slice(0, 5));
        const current = unpackObserved(results.slice(5));
        const where = `seed ${seed}, sequence ${seq}, step ${step}, argv ${argv.join(' ')}`;
        expect(current.reply, where).toEqual(before.reply);
        expect(current.rl, where).toEqual(before.rl);
        expect(current.quota, where).toEqual(before.quota);
        expect(sameTtl(current.rlTtl, before.rlTtl), `${where}: rl PTTL ${current.rlTtl} vs ${before.rlTtl}`).toBe(true);
        expect(sameTtl(current.quotaTtl, before.quotaTtl), `${where}: quota PTTL ${current.quotaTtl} vs ${before.quotaTtl}`).toBe(true);

        // What the sequences covered, so a generator that stopped reaching a path fails below.
        const [allowed, , , , , , , , , , , deniedBy] = before.reply;
        if (allowed === 1) seen.allowed++;
        if (deniedBy === 1) seen.deniedRate++;
        if (deniedBy === 2) seen.deniedQuota++;
        // A window had no room for the request (remaining < cost): it was one that denied.
        if (deniedBy === 1 && lim.minute > 0 && before.reply[2]! < lim.cost) seen.deniedByMinute++;
        if (deniedBy === 1 && lim.day > 0 && before.reply[5]! < lim.cost) seen.deniedByDay++;
        const fields = Object.keys(before.rl).length;
        if (fields < prevFields) seen.fieldsDropped++;
        prevFields = fields;
        if (prevMonth !== undefined && before.quota.month !== undefined && before.quota.month !== prevMonth) seen.monthChanged++;
        prevMonth = before.quota.month ?? prevMonth;
        if (before.rlTtl > 0) seen.expirySet++;
      }
    }
    expect(seen.allowed).toBeGreaterThan(500);
    expect(seen.deniedRate).toBeGreaterThan(200);
    expect(seen.deniedQuota).toBeGreaterThan(100);
    expect(seen.deniedByMinute).toBeGreaterThan(100);
    expect(seen.deniedByDay).toBeGreaterThan(100);
    expect(seen.fieldsDropped).toBeGreaterThan(20);
    expect(seen.monthChanged).toBeGreaterThan(5);
    expect(seen.expirySet).toBeGreaterThan(500);
  });

  it('the scripts as loaded (Redis clock) agree too, within the millisecond between their calls', async () => {
    const shaBefore = (await redis.script('LOAD', BEFORE_LUA)) as string;
    const shaNow = (await redis.script('LOAD', RATE_LIMIT_LUA)) as string;
    const prefix = uniqueRedisPrefix(infra, 'rlscript');
    const shapes = [
      ['3', '5', '1', '60000', '86400000', '0', '1'],
      ['0', '4', '1', '60000', '86400000', '6', '2'],
      ['100', '0', '1', '60000', '86400000', '3', '1'],
      ['0', '0', '1', '60000', '86400000', '0', '1'],
    ];
    for (const [i, argv] of shapes.entries()) {
      for (let call = 0; call < 8; call++) {
        // One transaction: the two calls run back to back, microseconds apart.
        const results = (await redis
          .multi()
          .evalsha(shaBefore, 2, `${prefix}before:rl:{k${i}}`, `${prefix}before:quota:{k${i}}`, ...argv)
          .evalsha(shaNow, 2, `${prefix}now:rl:{k${i}}`, `${prefix}now:quota:{k${i}}`, ...argv)
          .exec())!;
        const [before, current] = results.map(([err, v]) => {
          if (err) throw err;
          return v as Reply;
        });
        const where = `shape ${i}, call ${call}`;
        expect(current!.length, where).toBe(12);
        // Reset and retry times (ms) may differ by the millisecond that passed between the calls.
        const timed = new Set([3, 6, 7, 10]);
        current!.forEach((v, j) => {
          if (timed.has(j)) expect(Math.abs(v - before![j]!), `${where}, reply[${j}]`).toBeLessThanOrEqual(1);
          else expect(v, `${where}, reply[${j}]`).toBe(before![j]);
        });
      }
      expect(await redis.hgetall(`${prefix}now:rl:{k${i}}`)).toEqual(await redis.hgetall(`${prefix}before:rl:{k${i}}`));
      expect(await redis.hgetall(`${prefix}now:quota:{k${i}}`)).toEqual(await redis.hgetall(`${prefix}before:quota:{k${i}}`));
    }
  });
});
