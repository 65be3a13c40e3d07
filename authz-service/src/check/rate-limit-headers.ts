import type { RateLimitResult, WindowState } from './rate-limiter.js';

/**
 * Rate-limit state for the client, in two vocabularies:
 * - `X-RateLimit-Limit/Remaining/Reset` (the de-facto headers; Reset in seconds from now),
 *   for the window closest to its limit;
 * - the IETF httpapi draft's structured fields `RateLimit-Policy` (every policy: quota `q`,
 *   window `w` in seconds; the monthly `quota` policy's window is the rest of the month) and `RateLimit` (the closest policy: remaining `r`, reset `t`).
 */
export function rateLimitHeaders(r: RateLimitResult): Record<string, string> {
  const windows: { name: string; w: number; s: WindowState }[] = [];
  if (r.minute) windows.push({ name: 'minute', w: 60, s: r.minute });
  if (r.day) windows.push({ name: 'day', w: 86_400, s: r.day });
  // The monthly quota's window is the rest of the calendar month (UTC), so `w` is the time left.
  if (r.quota) windows.push({ name: 'quota', w: Math.max(1, Math.ceil(r.quota.resetMs / 1000)), s: r.quota });
  if (windows.length === 0) return {};
  const tightest = windows.reduce((a, b) => (b.s.remaining < a.s.remaining ? b : a));
  const reset = Math.max(0, Math.ceil(tightest.s.resetMs / 1000));
  return {
    'x-ratelimit-limit': String(tightest.s.limit),
    'x-ratelimit-remaining': String(tightest.s.remaining),
    'x-ratelimit-reset': String(reset),
    'ratelimit-policy': windows.map((x) => `"${x.name}";q=${x.s.limit};w=${x.w}`).join(', '),
    ratelimit: `"${tightest.name}";r=${tightest.s.remaining};t=${reset}`,
  };
}
