import { describe, expect, it } from 'vitest';
import { RestartBackoff } from '../src/index.js';

// The local stack's restart delays follow Docker's restart policy (docs/running.md).
describe('RestartBackoff', () => {
  it('doubles from 100 ms on quick exits, capped at a minute', () => {
    const backoff = new RestartBackoff();
    const delays = Array.from({ length: 12 }, () => backoff.delayAfter(50));
    expect(delays).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 51_200, 60_000, 60_000]);
  });

  it('starts over once the component stayed up 10 seconds', () => {
    const backoff = new RestartBackoff();
    for (let i = 0; i < 5; i++) backoff.delayAfter(1000);
    expect(backoff.delayAfter(9_999)).toBe(3200);
    expect(backoff.delayAfter(10_000)).toBe(100);
    expect(backoff.delayAfter(10)).toBe(200);
  });

  it('starts over when asked to', () => {
    const backoff = new RestartBackoff();
    for (let i = 0; i < 5; i++) backoff.delayAfter(0);
    backoff.reset();
    expect(backoff.delayAfter(0)).toBe(100);
  });
});
