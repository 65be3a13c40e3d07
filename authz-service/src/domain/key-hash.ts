import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Keys are stored only as HMAC-SHA-256 under a server secret: a database dump alone cannot be
 * brute-forced or used. Several secrets are accepted, newest first, so the secret can rotate:
 * new keys hash under the newest; lookups try each in turn.
 */
export class KeyHasher {
  constructor(private readonly secrets: readonly string[]) {
    if (secrets.length === 0) throw new Error('at least one key hash secret is required');
  }

  /** Hash under the newest secret (what new and rotated keys are stored with). */
  primary(key: string): string {
    return this.hashWith(this.secrets[0]!, key);
  }

  /** Every hash a presented key may be stored under, newest secret first. */
  candidates(key: string): string[] {
    return this.secrets.map((s) => this.hashWith(s, key));
  }

  private hashWith(secret: string, key: string): string {
    return createHmac('sha256', secret).update(key, 'utf8').digest('hex');
  }
}

/** Constant-time string equality for secrets (admin tokens and the like). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ab.length !== bb.length) {
    // Compare anyway so the time taken does not reveal the length match.
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}
