import { describe, expect, it } from 'vitest';
import { RefusalLimiter, refusalBucketOf } from '../src/check/refusal-limiter.js';

describe('RefusalLimiter', () => {
  it('allows perMinute refusals, then answers with the wait until the bucket has one again', () => {
    let now = 0;
    const limiter = new RefusalLimiter(6, 100, () => now);
    for (let i = 0; i < 6; i++) expect(limiter.reserve('198.51.100.1')).toBe(0);
    expect(limiter.reserve('198.51.100.1')).toBe(10); // 6 a minute: one every 10 s
    expect(limiter.reserve('198.51.100.2')).toBe(0); // per address
    now += 4_000;
    expect(limiter.reserve('198.51.100.1')).toBe(6);
    now += 6_000;
    expect(limiter.reserve('198.51.100.1')).toBe(0);
    expect(limiter.reserve('198.51.100.1')).toBe(10);
    limiter.refund('198.51.100.1'); // a valid key gives its token back
    expect(limiter.reserve('198.51.100.1')).toBe(0);
  });

  it('holds at most maxAddresses buckets, forgetting the least recently refused', () => {
    const limiter = new RefusalLimiter(1, 3, () => 0);
    for (const a of ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']) limiter.reserve(a);
    expect(limiter.size).toBe(3);
    expect(limiter.reserve('10.0.0.1')).toBe(0);
    expect(limiter.reserve('10.0.0.4')).toBe(60);
  });

  it('counts IPv4 by address, IPv6 by /64, IPv4-mapped IPv6 as IPv4, and nothing else', () => {
    expect(refusalBucketOf('192.0.2.7')).toBe('192.0.2.7');
    expect(refusalBucketOf('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(refusalBucketOf('2001:db8:0:1:aaaa::1')).toBe('2001:db8:0:1::/64');
    expect(refusalBucketOf('2001:0db8:0000:0001:ffff:1:2:3')).toBe('2001:db8:0:1::/64');
    expect(refusalBucketOf('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(refusalBucketOf('::1')).toBe('0:0:0:0::/64');
    expect(refusalBucketOf(undefined)).toBeUndefined();
    expect(refusalBucketOf('/var/run/envoy.sock')).toBeUndefined();
  });
});
