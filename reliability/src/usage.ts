import type pg from 'pg';
import { sleep } from '@tollgate/devstack';

export interface UsageTotals {
  rows: number;
  billable: number;
}

export async function usageFor(pool: pg.Pool, keyIds: string[]): Promise<UsageTotals> {
  const r = await pool.query<{ rows: number; billable: number }>(
    'select count(*)::int as rows, count(*) filter (where billable)::int as billable from usage_records where key_id = any($1)',
    [keyIds],
  );
  return r.rows[0]!;
}

/**
 * Waits until billing has recorded `expected` billable requests for these keys (usage arrives
 * through the sidecar's batches and its file reader, a moment after the answers), then holds
 * for `settleMs` more so a late double count would show. Returns what Postgres holds at the end,
 * equal or not: the caller asserts.
 */
export async function reconcile(
  pool: pg.Pool,
  keyIds: string[],
  expected: number,
  { timeoutMs = 30_000, settleMs = 1_500 } = {},
): Promise<UsageTotals & { waitedMs: number }> {
  const started = Date.now();
  let totals = { rows: 0, billable: 0 };
  while (Date.now() - started < timeoutMs) {
    try {
      totals = await usageFor(pool, keyIds);
      if (totals.billable >= expected) break;
    } catch {
      // Postgres may still be coming back.
    }
    await sleep(200);
  }
  const waitedMs = Date.now() - started;
  await sleep(settleMs);
  totals = await usageFor(pool, keyIds);
  return { ...totals, waitedMs };
}
