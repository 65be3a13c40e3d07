import type pg from 'pg';
import type { Queryable } from '../stores/key-store.js';
import type { SealedSecret } from './envelope.js';

export interface ProviderKeyMeta {
  userId: string;
  provider: string;
  fingerprint: string;
  masterKeyId: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface ProviderKeyRecord extends ProviderKeyMeta {
  sealed: SealedSecret;
}

/** The columns every sealed-secret table has (provider_keys, operator_credentials). */
export interface SealedRow {
  master_key_id: string;
  wrapped_dek: Buffer;
  ciphertext: Buffer;
  fingerprint: string;
  created_at: Date;
  updated_at: Date;
}

/** A sealed row's common fields, as records carry them. */
export function sealedFieldsOf(r: SealedRow): Pick<ProviderKeyRecord, 'fingerprint' | 'masterKeyId' | 'createdAt' | 'updatedAt' | 'sealed'> {
  return {
    fingerprint: r.fingerprint,
    masterKeyId: r.master_key_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    sealed: { masterKeyId: r.master_key_id, wrappedDek: r.wrapped_dek, ciphertext: r.ciphertext },
  };
}

/** What may leave the vault of a record: everything but the sealed secret. */
export function withoutSealed<T extends { sealed: SealedSecret }>(r: T): Omit<T, 'sealed'> {
  const { sealed: _sealed, ...meta } = r;
  return meta;
}

interface Row extends SealedRow {
  user_id: string;
  provider: string;
}

const toRecord = (r: Row): ProviderKeyRecord => ({ userId: r.user_id, provider: r.provider, ...sealedFieldsOf(r) });

export class VaultStore {
  constructor(readonly pool: pg.Pool) {}

  async upsert(
    userId: string,
    provider: string,
    sealed: SealedSecret,
    fp: string,
    db: Queryable = this.pool,
  ): Promise<{ record: ProviderKeyRecord; created: boolean }> {
    const r = await db.query<Row & { inserted: boolean }>(
      `insert into provider_keys (user_id, provider, master_key_id, wrapped_dek, ciphertext, fingerprint)
       values ($1,$2,$3,$4,$5,$6)
       on conflict (user_id, provider) do update set master_key_id = excluded.master_key_id,
         wrapped_dek = excluded.wrapped_dek, ciphertext = excluded.ciphertext,
         fingerprint = excluded.fingerprint, updated_at = now()
       returning *, (xmax = 0) as inserted`,
      [userId, provider, sealed.masterKeyId, sealed.wrappedDek, sealed.ciphertext, fp],
    );
    const row = r.rows[0]!;
    return { record: toRecord(row), created: row.inserted };
  }

  async get(userId: string, provider: string, db: Queryable = this.pool): Promise<ProviderKeyRecord | null> {
    const r = await db.query<Row>('select * from provider_keys where user_id = $1 and provider = $2', [userId, provider]);
    return r.rows[0] ? toRecord(r.rows[0]) : null;
  }

  async list(userId: string, db: Queryable = this.pool): Promise<ProviderKeyRecord[]> {
    const r = await db.query<Row>('select * from provider_keys where user_id = $1 order by provider', [userId]);
    return r.rows.map(toRecord);
  }

  async delete(userId: string, provider: string, db: Queryable = this.pool): Promise<boolean> {
    const r = await db.query('delete from provider_keys where user_id = $1 and provider = $2', [userId, provider]);
    return (r.rowCount ?? 0) > 0;
  }

  /** Rows not yet under the given master key, oldest first, in pages. */
  async notUnder(masterKeyId: string, limit: number, db: Queryable = this.pool): Promise<ProviderKeyRecord[]> {
    const r = await db.query<Row>('select * from provider_keys where master_key_id <> $1 order by updated_at limit $2', [masterKeyId, limit]);
    return r.rows.map(toRecord);
  }

  async replaceSeal(userId: string, provider: string, from: SealedSecret, to: SealedSecret, db: Queryable = this.pool): Promise<boolean> {
    // Only if nobody replaced the secret meanwhile (compare-and-swap on the wrapped DEK).
    const r = await db.query(
      `update provider_keys set master_key_id = $3, wrapped_dek = $4
       where user_id = $1 and provider = $2 and wrapped_dek = $5`,
      [userId, provider, to.masterKeyId, to.wrappedDek, from.wrappedDek],
    );
    return (r.rowCount ?? 0) > 0;
  }
}
