/**
 * Spaces call starts at least 1/rate seconds apart (a token bucket of size 1): simple, and
 * keeps the sidecar under Stripe's per-second limit even right after an outage, when the whole
 * backlog is due at once.
 */
export class CallSpacer {
  private next = 0;
  private readonly gapMs: number;

  constructor(callsPerSecond: number) {
    this.gapMs = 1000 / callsPerSecond;
  }

  async take(): Promise<void> {
    const now = Date.now();
    const at = Math.max(now, this.next);
    this.next = at + this.gapMs;
    if (at > now) await new Promise((r) => setTimeout(r, at - now));
  }
}

/** Exponential backoff with "equal jitter": half fixed, half random, capped. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}
