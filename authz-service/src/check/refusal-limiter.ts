import { isIPv4, isIPv6 } from 'node:net';
import { deny, type Deny } from './decision.js';

/**
 * Limits unauthenticated refusals (401s) per client address, per replica — like Envoy's local
 * rate limit, which cannot do this itself because it runs before ext_authz and cannot tell a
 * refusal from a pass. Each address has a token bucket of `perMinute` refusals, refilled at
 * `perMinute / 60` per second. While it is empty, the address gets 429 without a key-store
 * lookup (docs/authz.md, "Refusal limit"), so minted well-formed keys can cost Postgres at most
 * `perMinute` lookups per minute per address.
 *
 * The buckets live in a bounded LRU: an address that stops failing is forgotten first, and a
 * flood of new addresses cannot grow the limiter past `maxAddresses` (evicting a bucket only
 * gives that address a fresh budget, which is what a new address gets anyway).
 */
export class RefusalLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perMs: number;

  constructor(
    private readonly perMinute: number,
    private readonly maxAddresses = 65_536,
    private readonly now: () => number = Date.now,
  ) {
    if (!(perMinute > 0)) throw new Error('RefusalLimiter needs a positive perMinute');
    this.perMs = perMinute / 60_000;
  }

  /**
   * Takes one refusal from the address's budget before its key lookup: 0 when one was taken (the
   * lookup may run; refund() it unless the answer is a refusal), else the seconds until the address
   * may be refused normally again (nothing taken). Debiting before the lookup rather than after its
   * refusal is what keeps a fast flood to the budget: Checks in flight at once each need a token.
   */
  reserve(address: string): number {
    const b = this.refill(address) ?? { tokens: this.perMinute, at: this.now() };
    if (b.tokens < 1) return Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000));
    b.tokens -= 1;
    // Re-inserted so the Map's order is least recently refused first.
    this.buckets.delete(address);
    this.buckets.set(address, b);
    if (this.buckets.size > this.maxAddresses) this.buckets.delete(this.buckets.keys().next().value!);
    return 0;
  }

  /** Gives back a token reserve() took, for a Check that was not a refusal (a valid key). */
  refund(address: string): void {
    const b = this.refill(address);
    if (b) b.tokens = Math.min(this.perMinute, b.tokens + 1);
  }

  get size(): number {
    return this.buckets.size;
  }

  private refill(address: string): { tokens: number; at: number } | undefined {
    const b = this.buckets.get(address);
    if (!b) return undefined;
    const now = this.now();
    b.tokens = Math.min(this.perMinute, b.tokens + (now - b.at) * this.perMs);
    b.at = now;
    return b;
  }
}

/**
 * The bucket an address counts against: an IPv4 address itself (also written IPv4-mapped,
 * `::ffff:a.b.c.d`); an IPv6 address by its /64, the smallest block one subscriber is given, so
 * walking through a /64 is one address. Anything else (a Unix socket, nothing): undefined, not
 * limited.
 */
export function refusalBucketOf(address: string | undefined): string | undefined {
  if (!address) return undefined;
  if (isIPv4(address)) return address;
  if (!isIPv6(address)) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export function tooManyFailedAttempts(retryAfterS: number): Deny {
  return deny(429, 'too_many_failed_attempts', `Too many requests without a valid credential from this address; retry in ${retryAfterS} s`, {
    headers: { 'retry-after': String(retryAfterS) },
    outcome: 'refusals_limited',
  });
}
