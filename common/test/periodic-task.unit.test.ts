import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PeriodicTask } from '../src/periodic-task.js';

/** A run that lasts until the test ends it, counting how many are under way at once. */
function controlledRuns() {
  const ends: Array<(v: number) => void> = [];
  let active = 0;
  let most = 0;
  let calls = 0;
  const fn = () => {
    calls++;
    active++;
    most = Math.max(most, active);
    return new Promise<number>((resolve) => ends.push(resolve)).finally(() => active--);
  };
  return {
    fn,
    get calls() {
      return calls;
    },
    get most() {
      return most;
    },
    /** Ends the oldest run under way with `value`. */
    end: async (value = calls) => {
      ends.shift()?.(value);
      await vi.advanceTimersByTimeAsync(0);
    },
  };
}

/** Asserts that the next run starts exactly `ms` from now, not a millisecond sooner. */
async function expectNextRunIn(runs: { calls: number }, ms: number): Promise<void> {
  const before = runs.calls;
  await vi.advanceTimersByTimeAsync(ms - 1);
  expect(runs.calls).toBe(before);
  await vi.advanceTimersByTimeAsync(1);
  expect(runs.calls).toBe(before + 1);
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('PeriodicTask', () => {
  it('after-run: the next run starts a full interval after the previous one ended, never overlapping it', async () => {
    const runs = controlledRuns();
    const task = new PeriodicTask(runs.fn, { intervalMs: 100, onError: () => {} });
    await task.start();
    await expectNextRunIn(runs, 100);
    // A slow run: however long it takes, no second one starts meanwhile.
    await vi.advanceTimersByTimeAsync(1050);
    expect(runs.calls).toBe(1);
    await runs.end();
    await expectNextRunIn(runs, 100);
    expect(runs.most).toBe(1);
    await runs.end();
    await task.stop();
  });

  it('fixed-rate: ticks every interval from the start, and a tick during a run joins it instead of starting another', async () => {
    const runs = controlledRuns();
    const task = new PeriodicTask(runs.fn, { intervalMs: 100, cadence: 'fixed-rate', onError: () => {} });
    await task.start();
    await expectNextRunIn(runs, 100);
    await vi.advanceTimersByTimeAsync(150); // the ticks at 200 find the run going
    expect(runs.calls).toBe(1);
    await runs.end(); // at 250
    await expectNextRunIn(runs, 50); // the tick at 300, not 350
    expect(runs.most).toBe(1);
    await runs.end();
    await task.stop();
  });

  it('runAtStart: start() resolves once the first run is over, and the timer counts from then', async () => {
    const runs = controlledRuns();
    const task = new PeriodicTask(runs.fn, { intervalMs: 100, runAtStart: true, onError: () => {} });
    let started = false;
    const starting = task.start().then(() => (started = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(runs.calls).toBe(1);
    await vi.advanceTimersByTimeAsync(500);
    expect(started).toBe(false);
    await runs.end();
    await starting;
    await expectNextRunIn(runs, 100);
    await runs.end();
    await task.stop();
  });

  it('firstDelayMs: the first timed run comes sooner, the ones after it at the interval', async () => {
    const runs = controlledRuns();
    const task = new PeriodicTask(runs.fn, { intervalMs: 100, firstDelayMs: 10, onError: () => {} });
    await task.start();
    await expectNextRunIn(runs, 10);
    await runs.end();
    await expectNextRunIn(runs, 100);
    await runs.end();
    await task.stop();
  });

  it('stop() waits for the run under way, and no run starts after it', async () => {
    const runs = controlledRuns();
    const task = new PeriodicTask(runs.fn, { intervalMs: 100, onError: () => {} });
    await task.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(runs.calls).toBe(1);
    let stopped = false;
    const stopping = task.stop().then(() => (stopped = true));
    expect(task.stopped).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(stopped).toBe(false);
    await runs.end();
    await stopping;
    expect(stopped).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs.calls).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stop() during the run at start leaves no timer behind', async () => {
    const runs = controlledRuns();
    const task = new PeriodicTask(runs.fn, { intervalMs: 100, runAtStart: true, onError: () => {} });
    const starting = task.start();
    await vi.advanceTimersByTimeAsync(0);
    const stopping = task.stop();
    await runs.end();
    await Promise.all([starting, stopping]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs.calls).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a failed run goes to onError and the loop goes on', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const task = new PeriodicTask(
      async () => {
        calls++;
        if (calls === 1) throw new Error('postgres is down');
        return calls;
      },
      { intervalMs: 100, onError: (err) => errors.push(err) },
    );
    await task.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(errors.map((e) => (e as Error).message)).toEqual(['postgres is down']);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toBe(2);
    expect(errors).toHaveLength(1);
    await task.stop();
  });

  it('a function that throws before its first await is reported the same way', async () => {
    const errors: unknown[] = [];
    const task = new PeriodicTask<void>(
      () => {
        throw new Error('sync');
      },
      { intervalMs: 100, onError: (err) => errors.push(err) },
    );
    await expect(task.runNow()).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
  });

  it('runNow() joins a run under way: one call of fn, the same result for both callers', async () => {
    const runs = controlledRuns();
    const task = new PeriodicTask(runs.fn, { intervalMs: 100, onError: () => {} });
    await task.start();
    await vi.advanceTimersByTimeAsync(100);
    const joined = task.runNow();
    const again = task.runNow();
    expect(runs.calls).toBe(1);
    await runs.end(42);
    expect(await joined).toBe(42);
    expect(await again).toBe(42);
    // Once it is over, runNow() starts a fresh run.
    const fresh = task.runNow();
    expect(runs.calls).toBe(2);
    await runs.end(7);
    expect(await fresh).toBe(7);
    await task.stop();
  });

  it('a failed run resolves runNow() with undefined rather than rejecting', async () => {
    const errors: unknown[] = [];
    const task = new PeriodicTask(() => Promise.reject(new Error('boom')), { intervalMs: 100, onError: (err) => errors.push(err) });
    await expect(task.runNow()).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
  });

  it('interval 0 is off: start() runs nothing and sets no timer, runNow() still runs', async () => {
    const runs = controlledRuns();
    const task = new PeriodicTask(runs.fn, { intervalMs: 0, runAtStart: true, onError: () => {} });
    await task.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(runs.calls).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    const run = task.runNow();
    await runs.end(1);
    expect(await run).toBe(1);
  });

  it('runNow() after stop() still runs (a last flush), and a second start() does nothing', async () => {
    const runs = controlledRuns();
    const task = new PeriodicTask(runs.fn, { intervalMs: 100, onError: () => {} });
    await task.start();
    await task.start();
    await task.stop();
    const last = task.runNow();
    await runs.end(5);
    expect(await last).toBe(5);
    await task.start();
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs.calls).toBe(1);
  });

  it('its timer does not keep the process alive', async () => {
    vi.useRealTimers();
    const spy = vi.spyOn(globalThis, 'setTimeout');
    const task = new PeriodicTask(async () => {}, { intervalMs: 60_000, onError: () => {} });
    await task.start();
    const timer = spy.mock.results.at(-1)?.value as NodeJS.Timeout;
    spy.mockRestore();
    expect(timer.hasRef()).toBe(false);
    await task.stop();
  });
});
