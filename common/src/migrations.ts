import type pg from 'pg';
import type { Logger } from 'pino';

export interface Migration {
  /** Sortable, never renamed once released: `001_keys`, `002_audit`, … */
  id: string;
  sql: string;
}

export interface MigrateOptions {
  /** Table that records which migrations ran (one per service, so services migrate independently). */
  table: string;
  /** pg_advisory_lock key: replicas starting together apply each migration once. */
  lockKey: number;
  migrations: Migration[];
}

/** Applies pending migrations in order, each in its own transaction, under an advisory lock. */
export async function migrate(pool: pg.Pool, opts: MigrateOptions, logger?: Logger): Promise<string[]> {
  if (!/^[a-z_][a-z0-9_]*$/.test(opts.table)) throw new Error(`bad migrations table name ${opts.table}`);
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    await client.query('select pg_advisory_lock($1)', [opts.lockKey]);
    await client.query(`create table if not exists ${opts.table} (id text primary key, applied_at timestamptz not null default now())`);
    const done = new Set((await client.query<{ id: string }>(`select id from ${opts.table}`)).rows.map((r) => r.id));
    for (const m of [...opts.migrations].sort((a, b) => a.id.localeCompare(b.id))) {
      if (done.has(m.id)) continue;
      await client.query('begin');
      try {
        await client.query(m.sql);
        await client.query(`insert into ${opts.table} (id) values ($1)`, [m.id]);
        await client.query('commit');
      } catch (err) {
        await client.query('rollback');
        throw new Error(`migration ${m.id} failed: ${(err as Error).message}`);
      }
      applied.push(m.id);
      logger?.info({ migration: m.id }, 'applied migration');
    }
  } finally {
    await client.query('select pg_advisory_unlock($1)', [opts.lockKey]).catch(() => {});
    client.release();
  }
  return applied;
}
