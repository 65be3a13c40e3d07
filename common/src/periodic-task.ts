export interface PeriodicTaskOptions {
  /** Time between runs. 0 or less turns the timer off: start() runs nothing, runNow() still runs. */
  intervalMs: number;
  /** Where a failed run's error goes. The loop goes on: the next run is scheduled as usual. */
  onError: (err: unknown) => void;
  /**
   * 'after-run' (the default): the next run starts `intervalMs` after the previous one ended, so a
   * slow run pushes the next one back. 'fixed-rate': a tick every `intervalMs` whatever the runs
   * take; a tick that finds a run still going joins it, so a slow run skips ticks.
   */
  cadence?: 'after-run' | 'fixed-rate';
  /** Run once in start(), which resolves when that run is over; the timer starts after it. */
  runAtStart?: boolean;
  /** Delay before the first timed run; `intervalMs` unless given. */
  firstDelayMs?: number;
}

/**
 * Runs `fn` on a timer, never two at once: one mechanism for the services' sweepers, pollers and
 * flushers, so each gets the same stop and error behaviour. The timer is unref'd: a pending run
 * never keeps the process alive. stop() clears the timer and waits for the run under way.
 */
export class PeriodicTask<T = void> {
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<T | undefined> | undefined;
  private state: 'idle' | 'started' | 'stopped' = 'idle';

  constructor(
    private readonly fn: () => Promise<T>,
    private readonly opts: PeriodicTaskOptions,
  ) {}

  /** Whether stop() was called: a long run may check it to end early. */
  get stopped(): boolean {
    return this.state === 'stopped';
  }

  /** Starts the timer (once; again after stop() does nothing). */
  async start(): Promise<void> {
    if (this.state !== 'idle' || this.opts.intervalMs <= 0) return;
    this.state = 'started';
    if (this.opts.runAtStart) await this.runNow();
    this.arm(this.opts.firstDelayMs ?? this.opts.intervalMs);
  }

  /**
   * Runs `fn` now, or joins the run under way; resolves with its result once it is over, or with
   * undefined when it failed (the error went to onError). Works before start() and after stop().
   */
  runNow(): Promise<T | undefined> {
    this.current ??= (async () => this.fn())()
      .catch((err: unknown) => {
        this.opts.onError(err);
        return undefined;
      })
      .finally(() => {
        this.current = undefined;
      });
    return this.current;
  }

  /** Clears the timer and waits for the run under way, if any. */
  async stop(): Promise<void> {
    this.state = 'stopped';
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.current) await this.current;
  }

  private arm(delayMs: number): void {
    if (this.state !== 'started') return;
    const next = this.opts.intervalMs;
    this.timer = setTimeout(() => {
      if (this.opts.cadence === 'fixed-rate') {
        this.arm(next);
        void this.runNow();
      } else {
        void this.runNow().then(() => this.arm(next));
      }
    }, delayMs);
    this.timer.unref();
  }
}
