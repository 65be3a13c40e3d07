import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './proc.js';
import { ensureDatabase, startPostgres } from './postgres.js';
import { startRedis } from './redis.js';

/**
 * Postgres and Redis for a benchmark: DATABASE_URL / REDIS_URL when set, else private servers
 * on free loopback ports, removed afterwards.
 */
export async function startBenchStores(label: string): Promise<{ databaseUrl: string; redisUrl: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), `tollgate-bench-${label}-`));
  const stops: (() => Promise<void>)[] = [];
  let databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    const pg = await startPostgres({ dir: join(dir, 'pg'), port: await freePort(), ephemeral: true });
    stops.push(() => pg.process.stop());
    await ensureDatabase(pg.adminUrl, `bench_${label}`);
    databaseUrl = pg.urlFor(`bench_${label}`);
  }
  let redisUrl = process.env.REDIS_URL;
  if (!redisUrl) {
    const redis = await startRedis({ dir: join(dir, 'redis'), port: await freePort() });
    stops.push(() => redis.process.stop());
    redisUrl = redis.url;
  }
  return {
    databaseUrl,
    redisUrl,
    stop: async () => {
      for (const s of stops.reverse()) await s();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Latency percentiles (ms) from samples in nanoseconds. */
export function percentiles(samplesNs: number[], ps = [50, 90, 99, 99.9]): Record<string, number> {
  const sorted = Float64Array.from(samplesNs).sort();
  const out: Record<string, number> = {};
  for (const p of ps) {
    const idx = Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length));
    out[`p${p}`] = Number(((sorted[idx] ?? 0) / 1e6).toFixed(3));
  }
  return out;
}
