import type { Logger } from '@tollgate/common';

// One transaction helper for every service (authz-service's stores import it from here).
export { inTransaction } from '@tollgate/common';

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
