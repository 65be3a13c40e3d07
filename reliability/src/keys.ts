// Keys are made the way the management API makes them (generate, HMAC under the service's
// secret, insert through the service's KeyStore), from outside the service processes.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { KeyHasher, KeyStore, generateKey, checkKeyShape } from '@tollgate/authz-service';

export interface IssuedKey {
  id: string;
  userId: string;
  plaintext: string;
}

export class KeyIssuer {
  private readonly pool: pg.Pool;
  private readonly store: KeyStore;
  private readonly hasher: KeyHasher;

  constructor(databaseUrl: string, hashSecret: string) {
    this.pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    // Idle connections break when Postgres is killed on purpose; the next insert reconnects.
    this.pool.on('error', () => {});
    this.store = new KeyStore(this.pool);
    this.hasher = new KeyHasher([hashSecret]);
  }

  async issue(opts: { userId?: string; perMinute?: number | null; perDay?: number | null; stripeCustomerId?: string } = {}): Promise<IssuedKey> {
    const generated = generateKey('sk');
    const key = await this.store.insert({
      userId: opts.userId ?? `user_${randomBytes(4).toString('hex')}`,
      name: 'reliability',
      keyPrefix: generated.displayPrefix,
      keyHash: this.hasher.primary(generated.plaintext),
      permissionSet: 'full_access',
      rateLimitPerMinute: opts.perMinute === undefined ? 1_000_000 : opts.perMinute,
      rateLimitPerDay: opts.perDay === undefined ? 100_000_000 : opts.perDay,
      stripeCustomerId: opts.stripeCustomerId ?? null,
    });
    return { id: key.id, userId: key.userId, plaintext: generated.plaintext };
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/** A key of the right shape and checksum that no one issued: the Check must look it up to refuse it. */
export function unknownKey(): string {
  return generateKey('sk').plaintext;
}

/** A string that looks like a key but fails the checksum: refused before any lookup. */
export function malformedKey(): string {
  const k = generateKey('sk').plaintext;
  const bad = k.slice(0, -1) + (k.at(-1) === 'a' ? 'b' : 'a');
  if (checkKeyShape(bad, ['sk']) === null) throw new Error('malformedKey produced a valid key');
  return bad;
}
