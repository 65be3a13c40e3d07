import type pg from 'pg';
import { randomInt } from 'node:crypto';
import { BASE62 } from '../domain/key-format.js';
import type { ApiKey } from '../domain/api-key.js';
import type { RowOf } from './row-of.js';

/** Key ids: `key_` + 20 base62 characters; never secret, safe in logs and URLs. */
export const KEY_ID_RE = /^key_[0-9A-Za-z]{20}$/;

function newKeyId(): string {
  let s = 'key_';
  for (let i = 0; i < 20; i++) s += BASE62[randomInt(62)];
  return s;
}

/** An api_keys row; its bigint columns come back from pg as strings. */
type ApiKeyRow = Omit<RowOf<ApiKey>, 'monthly_quota' | 'usage_count'> & { monthly_quota: string | null; usage_count: string };

/** Every column but the hashes: the hashes never leave the store. */
const KEY_COLUMNS = `id, user_id, name, description, key_prefix, scopes, permission_set,
  rate_limit_per_minute, rate_limit_per_day, monthly_quota, plan, expires_at, is_active, revoked_at, revoked_by,
  revoked_reason, last_used_at, usage_count, metadata, stripe_customer_id, billing_suspended_at,
  previous_key_expires_at, created_by, created_at, updated_at`;

function rowToKey(r: ApiKeyRow): ApiKey {
  return {
    id: r.id,
    userId: r.user_id,
    name: r.name,
    description: r.description,
    keyPrefix: r.key_prefix,
    scopes: r.scopes,
    permissionSet: r.permission_set,
    rateLimitPerMinute: r.rate_limit_per_minute,
    rateLimitPerDay: r.rate_limit_per_day,
    monthlyQuota: r.monthly_quota === null ? null : Number(r.monthly_quota),
    plan: r.plan,
    expiresAt: r.expires_at,
    isActive: r.is_active,
    revokedAt: r.revoked_at,
    revokedBy: r.revoked_by,
    revokedReason: r.revoked_reason,
    lastUsedAt: r.last_used_at,
    usageCount: Number(r.usage_count),
    metadata: r.metadata,
    stripeCustomerId: r.stripe_customer_id,
    billingSuspendedAt: r.billing_suspended_at,
    previousKeyExpiresAt: r.previous_key_expires_at,
    createdBy: r.created_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export interface NewKey {
  id?: string;
  userId: string;
  name: string;
  description?: string | null;
  keyPrefix: string;
  keyHash: string;
  scopes?: string[];
  permissionSet?: string | null;
  rateLimitPerMinute?: number | null;
  rateLimitPerDay?: number | null;
  monthlyQuota?: number | null;
  plan?: string | null;
  expiresAt?: Date | null;
  metadata?: Record<string, unknown>;
  stripeCustomerId?: string | null;
  createdBy?: string | null;
}

/** Anything with `query`: a pool, or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

/** Fields the management API may change with `update`; undefined leaves a column as it is. */
export interface KeyPatch {
  name?: string;
  description?: string | null;
  scopes?: string[];
  permissionSet?: string | null;
  rateLimitPerMinute?: number | null;
  rateLimitPerDay?: number | null;
  monthlyQuota?: number | null;
  plan?: string | null;
  metadata?: Record<string, unknown>;
  stripeCustomerId?: string | null;
  isActive?: boolean;
}

const PATCH_COLUMNS: Record<keyof KeyPatch, string> = {
  name: 'name',
  description: 'description',
  scopes: 'scopes',
  permissionSet: 'permission_set',
  rateLimitPerMinute: 'rate_limit_per_minute',
  rateLimitPerDay: 'rate_limit_per_day',
  monthlyQuota: 'monthly_quota',
  plan: 'plan',
  metadata: 'metadata',
  stripeCustomerId: 'stripe_customer_id',
  isActive: 'is_active',
};

export interface KeyListFilter {
  userId?: string;
  /** true: only keys whose state is active; false: only revoked, inactive or expired ones. */
  active?: boolean;
  /** Keys that are not yet expired but expire within this many days. */
  expiringWithinDays?: number;
  /** Part of the name or user id, the start of the display prefix, or the exact id (case-insensitive). */
  search?: string;
  /** The console's status filter; `expiring` uses expiringWithinDays, default 7. */
  status?: 'active' | 'revoked' | 'expiring' | 'suspended';
}

const likeEscaped = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);
const DEFAULT_EXPIRING_DAYS = 7;

/** Where a page starts: the (created_at in microseconds, id) of the last key of the previous page. */
export interface KeyListCursor {
  createdAtMicros: string;
  id: string;
}

export interface KeyPage {
  keys: ApiKey[];
  /** Set when more keys follow; pass it back to get the next page. */
  next: KeyListCursor | null;
}

const ACTIVE_SQL = `(revoked_at is null and is_active and (expires_at is null or expires_at > now()))`;

export interface HashMatch {
  key: ApiKey;
  /** 'previous' when the key was presented with its pre-rotation secret, inside the grace period. */
  matched: 'current' | 'previous';
}

/** Postgres access for API keys. Postgres is the source of truth; caches sit in front of it. */
export class KeyStore {
  constructor(readonly pool: pg.Pool) {}

  async insert(k: NewKey, db: Queryable = this.pool): Promise<ApiKey> {
    const r = await db.query<ApiKeyRow>(
      `insert into api_keys (id, user_id, name, description, key_prefix, key_hash, scopes, permission_set,
         rate_limit_per_minute, rate_limit_per_day, expires_at, metadata, stripe_customer_id, created_by, monthly_quota, plan)
       values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)
       returning ${KEY_COLUMNS}`,
      [
        k.id ?? newKeyId(),
        k.userId,
        k.name,
        k.description ?? null,
        k.keyPrefix,
        k.keyHash,
        k.scopes ?? [],
        k.permissionSet ?? null,
        k.rateLimitPerMinute ?? null,
        k.rateLimitPerDay ?? null,
        k.expiresAt ?? null,
        k.metadata ?? {},
        k.stripeCustomerId ?? null,
        k.createdBy ?? null,
        k.monthlyQuota ?? null,
        k.plan ?? null,
      ],
    );
    return rowToKey(r.rows[0]!);
  }

  /**
   * The key stored under any of `hashes` (one per hash secret), by its current secret or, within
   * the rotation grace period, its previous one. Revoked/expired keys are returned too: the
   * caller decides, so a revoked key is told apart from an unknown one.
   */
  async findByHash(hashes: string[], db: Queryable = this.pool): Promise<HashMatch | null> {
    const r = await db.query<ApiKeyRow & { matched_current: boolean }>(
      `select ${KEY_COLUMNS}, key_hash = any($1) as matched_current from api_keys
        where key_hash = any($1)
           or (previous_key_hash = any($1) and previous_key_expires_at > now())
        limit 1`,
      [hashes],
    );
    const row = r.rows[0];
    if (!row) return null;
    return { key: rowToKey(row), matched: row.matched_current ? 'current' : 'previous' };
  }

  async getById(id: string, db: Queryable = this.pool): Promise<ApiKey | null> {
    const r = await db.query<ApiKeyRow>(`select ${KEY_COLUMNS} from api_keys where id = $1`, [id]);
    return r.rows[0] ? rowToKey(r.rows[0]) : null;
  }

  async listByUser(userId: string, db: Queryable = this.pool): Promise<ApiKey[]> {
    const r = await db.query<ApiKeyRow>(`select ${KEY_COLUMNS} from api_keys where user_id = $1 order by created_at desc, id`, [userId]);
    return r.rows.map(rowToKey);
  }

  async revoke(id: string, by: string, reason: string | null, db: Queryable = this.pool): Promise<ApiKey | null> {
    const r = await db.query<ApiKeyRow>(
      `update api_keys set is_active = false, revoked_at = coalesce(revoked_at, now()), revoked_by = $2,
         revoked_reason = $3, updated_at = now()
       where id = $1 returning ${KEY_COLUMNS}`,
      [id, by, reason],
    );
    return r.rows[0] ? rowToKey(r.rows[0]) : null;
  }

  /** Reads a key and locks its row until the transaction ends (read-check-write without races). */
  async getForUpdate(id: string, db: Queryable): Promise<ApiKey | null> {
    const r = await db.query<ApiKeyRow>(`select ${KEY_COLUMNS} from api_keys where id = $1 for update`, [id]);
    return r.rows[0] ? rowToKey(r.rows[0]) : null;
  }

  async update(id: string, patch: KeyPatch, db: Queryable = this.pool): Promise<ApiKey | null> {
    const sets: string[] = [];
    const values: unknown[] = [id];
    for (const [field, column] of Object.entries(PATCH_COLUMNS) as [keyof KeyPatch, string][]) {
      if (patch[field] === undefined) continue;
      values.push(patch[field]);
      sets.push(`${column} = $${values.length}`);
    }
    if (sets.length === 0) return this.getById(id, db);
    const r = await db.query<ApiKeyRow>(`update api_keys set ${sets.join(', ')}, updated_at = now() where id = $1 returning ${KEY_COLUMNS}`, values);
    return r.rows[0] ? rowToKey(r.rows[0]) : null;
  }

  /** Sets a new expiry (null: never expires). */
  async setExpiry(id: string, expiresAt: Date | null, db: Queryable = this.pool): Promise<ApiKey | null> {
    const r = await db.query<ApiKeyRow>(`update api_keys set expires_at = $2, updated_at = now() where id = $1 returning ${KEY_COLUMNS}`, [id, expiresAt]);
    return r.rows[0] ? rowToKey(r.rows[0]) : null;
  }

  /**
   * Replaces the key's secret. The current hash becomes the previous one, accepted until
   * `graceEnd` (a secret from an earlier rotation is dropped at once); with no grace the old
   * secret stops working immediately.
   */
  async rotate(id: string, next: { keyHash: string; keyPrefix: string; graceEnd: Date | null }, db: Queryable = this.pool): Promise<ApiKey | null> {
    const r = await db.query<ApiKeyRow>(
      `update api_keys set
         previous_key_hash = case when $4::timestamptz is null then null else key_hash end,
         previous_key_expires_at = $4::timestamptz,
         key_hash = $2, key_prefix = $3, updated_at = now()
       where id = $1 returning ${KEY_COLUMNS}`,
      [id, next.keyHash, next.keyPrefix, next.graceEnd],
    );
    return r.rows[0] ? rowToKey(r.rows[0]) : null;
  }

  /** Newest first, keyset-paginated (stable while keys are added or removed between pages). */
  async list(filter: KeyListFilter, page: { limit: number; after?: KeyListCursor | null }, db: Queryable = this.pool): Promise<KeyPage> {
    const where: string[] = [];
    const values: unknown[] = [];
    const param = (v: unknown) => {
      values.push(v);
      return `$${values.length}`;
    };
    if (filter.userId !== undefined) where.push(`user_id = ${param(filter.userId)}`);
    if (filter.active === true) where.push(ACTIVE_SQL);
    if (filter.active === false) where.push(`not ${ACTIVE_SQL}`);
    if (filter.expiringWithinDays !== undefined || filter.status === 'expiring') {
      where.push(`expires_at > now() and expires_at <= now() + make_interval(days => ${param(filter.expiringWithinDays ?? DEFAULT_EXPIRING_DAYS)})`);
    }
    if (filter.status === 'active' || filter.status === 'expiring') where.push(ACTIVE_SQL);
    if (filter.status === 'revoked') where.push('revoked_at is not null');
    if (filter.status === 'suspended') where.push('revoked_at is null and not is_active');
    if (filter.search !== undefined) {
      const like = likeEscaped(filter.search);
      where.push(
        `(name ilike ${param(`%${like}%`)} or user_id ilike ${param(`%${like}%`)} or key_prefix ilike ${param(`${like}%`)} or id = ${param(filter.search)})`,
      );
    }
    if (page.after) {
      // Microseconds, not a JS Date: Postgres keeps microseconds and the order must be exact.
      where.push(`(created_at, id) < (timestamptz 'epoch' + ${param(page.after.createdAtMicros)}::bigint * interval '1 microsecond', ${param(page.after.id)})`);
    }
    const r = await db.query<ApiKeyRow & { created_us: string }>(
      `select ${KEY_COLUMNS}, (extract(epoch from created_at) * 1000000)::bigint::text as created_us
         from api_keys ${where.length ? `where ${where.join(' and ')}` : ''}
        order by created_at desc, id desc
        limit ${param(page.limit + 1)}`,
      values,
    );
    const rows = r.rows.slice(0, page.limit);
    const last = rows.at(-1);
    return {
      keys: rows.map(rowToKey),
      next: r.rows.length > page.limit && last ? { createdAtMicros: last.created_us, id: last.id } : null,
    };
  }

  async delete(id: string, db: Queryable = this.pool): Promise<ApiKey | null> {
    const r = await db.query<ApiKeyRow>(`delete from api_keys where id = $1 returning ${KEY_COLUMNS}`, [id]);
    return r.rows[0] ? rowToKey(r.rows[0]) : null;
  }

  /**
   * Adds batched usage (from the Check path) in one statement: never a query per request.
   */
  async recordUsage(batch: Map<string, { count: number; lastUsedAt: Date }>, db: Queryable = this.pool): Promise<void> {
    if (batch.size === 0) return;
    const ids: string[] = [];
    const counts: number[] = [];
    const times: Date[] = [];
    for (const [id, u] of batch) {
      ids.push(id);
      counts.push(u.count);
      times.push(u.lastUsedAt);
    }
    await db.query(
      `update api_keys k set usage_count = k.usage_count + u.count,
         last_used_at = greatest(coalesce(k.last_used_at, u.at), u.at)
       from unnest($1::text[], $2::bigint[], $3::timestamptz[]) as u(id, count, at)
       where k.id = u.id`,
      [ids, counts, times],
    );
  }
}
