/**
 * The delay before retry number `attempt` (1 = the first retry): exponential, doubling from
 * `baseMs` up to `maxMs`, with the upper half jittered so receivers that failed together (an
 * outage) are not all retried in the same instant, and each delay is still at least half of the
 * doubled one, so retries keep spreading out.
 */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
