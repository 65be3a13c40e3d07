import type pg from 'pg';
import type { Queryable } from '../stores/key-store.js';
import type { SealedSecret } from './envelope.js';
import { type SealedRow, sealedFieldsOf } from './vault-store.js';

export interface OperatorCredentialMeta {
  id: string;
  provider: string;
  label: string;
  fingerprint: string;
  masterKeyId: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface OperatorCredentialRecord extends OperatorCredentialMeta {
  sealed: SealedSecret;
}

interface Row extends SealedRow {
  id: string;
  provider: string;
  label: string;
}

const toRecord = (r: Row): OperatorCredentialRecord => ({ id: r.id, provider: r.provider, label: r.label, ...sealedFieldsOf(r) });

/** The operator's own provider credentials (table operator_credentials, migration 070). */
export class OperatorCredentialStore {
  constructor(readonly pool: pg.Pool) {}

  async insert(id: string, provider: string, label: string, sealed: SealedSecret, fp: string, db: Queryable = this.pool): Promise<OperatorCredentialRecord> {
    const r = await db.query<Row>(
      `insert into operator_credentials (id, provider, label, master_key_id, wrapped_dek, ciphertext, fingerprint)
       values ($1,$2,$3,$4,$5,$6,$7) returning *`,
      [id, provider, label, sealed.masterKeyId, sealed.wrappedDek, sealed.ciphertext, fp],
    );
    return toRecord(r.rows[0]!);
  }

  /** A new secret (and optionally label) for an existing credential; null if there is none. */
  async replace(id: string, sealed: SealedSecret, fp: string, label: string | undefined, db: Queryable = this.pool): Promise<OperatorCredentialRecord | null> {
    const r = await db.query<Row>(
      `update operator_credentials set master_key_id = $2, wrapped_dek = $3, ciphertext = $4, fingerprint = $5,
         label = coalesce($6, label), updated_at = now()
       where id = $1 returning *`,
      [id, sealed.masterKeyId, sealed.wrappedDek, sealed.ciphertext, fp, label ?? null],
    );
    return r.rows[0] ? toRecord(r.rows[0]) : null;
  }

  async get(id: string, db: Queryable = this.pool): Promise<OperatorCredentialRecord | null> {
    const r = await db.query<Row>('select * from operator_credentials where id = $1', [id]);
    return r.rows[0] ? toRecord(r.rows[0]) : null;
  }

  async forProvider(provider: string, db: Queryable = this.pool): Promise<OperatorCredentialRecord[]> {
    const r = await db.query<Row>('select * from operator_credentials where provider = $1 order by id', [provider]);
    return r.rows.map(toRecord);
  }

  async list(db: Queryable = this.pool): Promise<OperatorCredentialRecord[]> {
    const r = await db.query<Row>('select * from operator_credentials order by provider, id');
    return r.rows.map(toRecord);
  }

  /** Credentials not yet under the given master key, oldest first, in pages (rewrap). */
  async notUnder(masterKeyId: string, limit: number, db: Queryable = this.pool): Promise<OperatorCredentialRecord[]> {
    const r = await db.query<Row>('select * from operator_credentials where master_key_id <> $1 order by updated_at, id limit $2', [masterKeyId, limit]);
    return r.rows.map(toRecord);
  }

  /** A new wrapped data key, only if nobody replaced the secret meanwhile (compare-and-swap on the old one). */
  async replaceSeal(id: string, from: SealedSecret, to: SealedSecret, db: Queryable = this.pool): Promise<boolean> {
    const r = await db.query('update operator_credentials set master_key_id = $2, wrapped_dek = $3 where id = $1 and wrapped_dek = $4', [
      id,
      to.masterKeyId,
      to.wrappedDek,
      from.wrappedDek,
    ]);
    return (r.rowCount ?? 0) > 0;
  }

  async delete(id: string, db: Queryable = this.pool): Promise<OperatorCredentialRecord | null> {
    const r = await db.query<Row>('delete from operator_credentials where id = $1 returning *', [id]);
    return r.rows[0] ? toRecord(r.rows[0]) : null;
  }
}
