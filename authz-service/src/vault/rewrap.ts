import type { Logger } from '@tollgate/common';
import type { Envelope, SealedSecret } from './envelope.js';

export interface RewrapCounts {
  rewrapped: number;
  failed: number;
}

/** One sealed-secret table (provider_keys, operator_credentials) as a rewrap walks it. */
export interface RewrapTable<R extends { sealed: SealedSecret }> {
  /** Names the table in the log. */
  what: string;
  /** Rows not yet under the master key, oldest first. */
  notUnder(masterKeyId: string, limit: number): Promise<R[]>;
  /** The row's new seal, under its own binding (throws VaultDecryptError if it does not open). */
  rewrap(envelope: Envelope, row: R): SealedSecret;
  /** Stores `next` only if the row still has the seal it was read with; false if it was replaced meanwhile. */
  replaceSeal(row: R, next: SealedSecret): Promise<boolean>;
  /** What tells rows apart, for the log (never the secret). */
  identify(row: R): Record<string, string>;
}

/**
 * Moves every row of one table to the newest master key, page by page. A row that cannot be
 * rewrapped (unknown master key, moved or tampered) is logged, counted and skipped; the rest
 * carry on. Rows replaced meanwhile are already under the newest key and need nothing.
 */
export async function rewrapTable<R extends { sealed: SealedSecret }>(
  envelope: Envelope,
  table: RewrapTable<R>,
  logger: Logger,
  batchSize: number,
): Promise<RewrapCounts> {
  let rewrapped = 0;
  let failed = 0;
  const skip = new Set<string>();
  const idOf = (row: R) => JSON.stringify(table.identify(row));
  for (;;) {
    const rows = (await table.notUnder(envelope.currentKeyId, batchSize + skip.size)).filter((r) => !skip.has(idOf(r)));
    if (rows.length === 0) break;
    for (const row of rows) {
      try {
        if (await table.replaceSeal(row, table.rewrap(envelope, row))) rewrapped++;
      } catch (err) {
        failed++;
        skip.add(idOf(row));
        logger.error({ ...table.identify(row), err: (err as Error).message }, `could not rewrap ${table.what}`);
      }
    }
  }
  return { rewrapped, failed };
}
