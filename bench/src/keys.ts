import pg from 'pg';
import { KeyHasher, KeyStore, generateKey } from '@tollgate/authz-service';

export interface BenchKey {
  id: string;
  userId: string;
  plaintext: string;
  /** HMAC-SHA-256 under the bench's hash secret: what both gateways look keys up by. */
  hash: string;
}

/**
 * Keys in Tollgate's store, with limits so generous that no request is refused but every one
 * still runs the rate-limit script. The same keys (hashes only) become OPA's data.
 */
export async function createBenchKeys(opts: {
  databaseUrl: string;
  hashSecret: string;
  count: number;
  perMinute: number;
  perDay: number;
}): Promise<BenchKey[]> {
  const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: 4 });
  const store = new KeyStore(pool);
  const hasher = new KeyHasher([opts.hashSecret]);
  try {
    const keys: BenchKey[] = [];
    for (let i = 0; i < opts.count; i++) {
      const k = generateKey('sk');
      const hash = hasher.primary(k.plaintext);
      const row = await store.insert({
        userId: `bench_user_${i % 50}`,
        name: `bench ${i}`,
        keyPrefix: k.displayPrefix,
        keyHash: hash,
        permissionSet: 'full_access',
        rateLimitPerMinute: opts.perMinute,
        rateLimitPerDay: opts.perDay,
      });
      keys.push({ id: row.id, userId: row.userId, plaintext: k.plaintext, hash });
    }
    return keys;
  } finally {
    await pool.end();
  }
}
