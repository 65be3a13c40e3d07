const WINDOW_MS = 60_000;
/** Addresses tracked at most; past it, windows that have ended are dropped first. */
const MAX_ADDRESSES = 10_000;

/**
 * Failed sign-ins per client address, per minute (fixed windows), in this replica's memory: after
 * `perMinute` failures an address waits for its window to end. Guessing an admin token is
 * hopeless anyway (>= 16 characters); this stops a script from trying one per millisecond.
 */
export class SigninLimiter {
  private readonly windows = new Map<string, { start: number; failures: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until the address may try again, or 0 when it may now. */
  retryAfterSeconds(address: string): number {
    const w = this.windows.get(address);
    const t = this.now();
    if (!w || t - w.start >= WINDOW_MS || w.failures < this.perMinute) return 0;
    return Math.max(1, Math.ceil((w.start + WINDOW_MS - t) / 1000));
  }

  failed(address: string): void {
    const t = this.now();
    const w = this.windows.get(address);
    if (w && t - w.start < WINDOW_MS) {
      w.failures += 1;
      return;
    }
    if (this.windows.size >= MAX_ADDRESSES) {
      for (const [a, old] of this.windows) if (t - old.start >= WINDOW_MS) this.windows.delete(a);
      if (this.windows.size >= MAX_ADDRESSES) this.windows.delete(this.windows.keys().next().value!);
    }
    this.windows.set(address, { start: t, failures: 1 });
  }
}
