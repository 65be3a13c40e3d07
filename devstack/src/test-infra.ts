import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { freePort } from './proc.js';
import { startPostgres, ensureDatabase, dropDatabase, withDatabase, type RunningPostgres } from './postgres.js';
import { startRedis, type RunningRedis } from './redis.js';
import { startStripeMock, type RunningStripeMock } from './stripe-mock.js';
import { findEnvoy } from './envoy.js';

/** What the integration tests' global setup provides to every test file. */
export interface TestInfra {
  /** Maintenance URL of the run's Postgres server; test files create their own databases on it. */
  pgAdminUrl: string;
  redisUrl: string;
  /** Every key this run writes in Redis starts with this, so concurrent runs never meet. */
  redisPrefix: string;
  stripeMockUrl: string;
  envoyBin: string;
  runId: string;
}

/** A database of its own for one test file; dropped by the returned function. */
export async function createTestDatabase(infra: TestInfra, label: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `tg_${infra.runId}_${label.replace(/[^a-z0-9]+/gi, '_').toLowerCase()}_${randomBytes(3).toString('hex')}`.slice(0, 60);
  await ensureDatabase(infra.pgAdminUrl, name);
  return { url: withDatabase(infra.pgAdminUrl, name), drop: () => dropDatabase(infra.pgAdminUrl, name) };
}

export function uniqueRedisPrefix(infra: TestInfra, label: string): string {
  return `${infra.redisPrefix}${label}:${randomBytes(3).toString('hex')}:`;
}

/**
 * Starts what the integration tests need — Postgres, Redis, stripe-mock — on free loopback
 * ports, or uses DATABASE_URL / REDIS_URL when set. Every failure says what is missing.
 */
export async function startTestInfra(): Promise<{ infra: TestInfra; stop: () => Promise<void> }> {
  const runId = randomBytes(4).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-test-'));
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    let pgAdminUrl: string;
    if (process.env.DATABASE_URL) {
      pgAdminUrl = process.env.DATABASE_URL;
      const c = new pg.Client({ connectionString: pgAdminUrl, connectionTimeoutMillis: 3000 });
      await c.connect().catch((e: Error) => {
        throw new Error(`DATABASE_URL is set but Postgres does not answer there: ${e.message}`);
      });
      await c.end();
    } else {
      let server: RunningPostgres;
      try {
        server = await startPostgres({ dir: join(dir, 'pg'), port: await freePort(), ephemeral: true });
      } catch (e) {
        throw new Error(`tests need Postgres and could not start one: ${(e as Error).message}`);
      }
      stops.push(() => server.process.stop());
      pgAdminUrl = server.adminUrl;
    }

    let redisUrl: string;
    if (process.env.REDIS_URL) {
      redisUrl = process.env.REDIS_URL;
    } else {
      let redis: RunningRedis;
      try {
        redis = await startRedis({ dir: join(dir, 'redis'), port: await freePort() });
      } catch (e) {
        throw new Error(`tests need Redis and could not start one: ${(e as Error).message}`);
      }
      stops.push(() => redis.process.stop());
      redisUrl = redis.url;
    }

    let stripe: RunningStripeMock;
    try {
      stripe = await startStripeMock(await freePort());
    } catch (e) {
      throw new Error(`tests need stripe-mock and could not start it: ${(e as Error).message}`);
    }
    stops.push(() => stripe.process.stop());

    let envoyBin: string;
    try {
      envoyBin = findEnvoy();
    } catch (e) {
      throw new Error(`tests need Envoy: ${(e as Error).message}`);
    }

    return {
      infra: { pgAdminUrl, redisUrl, redisPrefix: `tg_test:${runId}:`, stripeMockUrl: stripe.url, envoyBin, runId },
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
