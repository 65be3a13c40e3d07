import type pg from 'pg';
import type { Logger } from '@tollgate/common';

/** Runs `fn` in one transaction on one pooled connection: all of it commits, or none of it. */
export async function inTransaction<T>(pool: pg.Pool, fn: (db: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/**
 * A step after a commit (publishing a cache invalidation): the change happened, so its failure
 * must not turn the answer into an error. It is logged; caches are bounded by their TTL.
 */
export async function afterCommit(logger: Logger, what: Record<string, unknown>, step: () => Promise<void>): Promise<void> {
  try {
    await step();
  } catch (err) {
    logger.error({ err: (err as Error).message, ...what }, 'could not publish the change after commit; caches expire by TTL');
  }
}
