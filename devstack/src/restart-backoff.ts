// The delay before the local stack restarts a component that died, as Docker's (and so Compose's)
// restart policies compute it: 100 ms, doubled after each restart up to one minute, and back to
// 100 ms once the component has stayed up for 10 seconds. A crash loop therefore costs at most
// one start a minute, while a one-off crash is repaired at once.
export const RESTART_BASE_MS = 100;
export const RESTART_MAX_MS = 60_000;
export const RESTART_RESET_AFTER_MS = 10_000;

export class RestartBackoff {
  private next = RESTART_BASE_MS;

  /** The delay before the next start of a component that ran for `ranMs` before it exited. */
  delayAfter(ranMs: number): number {
    if (ranMs >= RESTART_RESET_AFTER_MS) this.next = RESTART_BASE_MS;
    const delay = this.next;
    this.next = Math.min(this.next * 2, RESTART_MAX_MS);
    return delay;
  }

  /** Someone asked for the component now (`./scripts/stack up`): the next failure starts over. */
  reset(): void {
    this.next = RESTART_BASE_MS;
  }
}
