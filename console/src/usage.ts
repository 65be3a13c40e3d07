import { ApiError, client, keySeries, must, type OutcomePoint, type Range } from './api.js';

/**
 * A key's requests by outcome. Uses the series route; where the server predates it (404), falls
 * back to the per-key usage buckets, which split only billable (allowed) from refused.
 */
export async function keyOutcomes(id: string, range: Range): Promise<OutcomePoint[]> {
  try {
    return (await keySeries(id, range)).points;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404 || err.code === 'key_not_found') throw err;
  }
  const usage = await must(
    client.GET('/api/keys/{id}/usage', { params: { path: { id }, query: { from: range.from, to: range.to, granularity: range.bucket } } }),
  );
  return usage.buckets.map((b) => ({
    t: b.start,
    allowed: b.billable_requests,
    unauthenticated: 0,
    forbidden: 0,
    rate_limited: 0,
    server_error: 0,
    other: b.refused_requests + Math.max(0, b.total_requests - b.billable_requests - b.refused_requests),
  }));
}
