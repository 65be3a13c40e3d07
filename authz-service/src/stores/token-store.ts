import type pg from 'pg';
import type { Queryable } from './key-store.js';
import type { RowOf } from './row-of.js';

export interface GatewayToken {
  jti: string;
  project: string;
  service: string;
  description: string | null;
  routes: string[];
  kid: string;
  createdAt: Date;
  createdBy: string | null;
  expiresAt: Date;
  lastUsedAt: Date | null;
  isActive: boolean;
  revokedAt: Date | null;
  revokedBy: string | null;
  revokedReason: string | null;
}

type Row = RowOf<GatewayToken>;

const rowToToken = (r: Row): GatewayToken => ({
  jti: r.jti,
  project: r.project,
  service: r.service,
  description: r.description,
  routes: r.routes,
  kid: r.kid,
  createdAt: r.created_at,
  createdBy: r.created_by,
  expiresAt: r.expires_at,
  lastUsedAt: r.last_used_at,
  isActive: r.is_active,
  revokedAt: r.revoked_at,
  revokedBy: r.revoked_by,
  revokedReason: r.revoked_reason,
});

export class TokenStore {
  constructor(readonly pool: pg.Pool) {}

  async insert(
    t: { jti: string; project: string; service: string; description: string | null; routes: string[]; kid: string; expiresAt: Date; createdBy: string },
    db: Queryable = this.pool,
  ): Promise<GatewayToken> {
    const r = await db.query<Row>(
      `insert into gateway_tokens (jti, project, service, description, routes, kid, expires_at, created_by)
       values ($1,$2,$3,$4,$5,$6,$7,$8) returning *`,
      [t.jti, t.project, t.service, t.description, t.routes, t.kid, t.expiresAt, t.createdBy],
    );
    return rowToToken(r.rows[0]!);
  }

  async get(jti: string, db: Queryable = this.pool): Promise<GatewayToken | null> {
    const r = await db.query<Row>('select * from gateway_tokens where jti = $1', [jti]);
    return r.rows[0] ? rowToToken(r.rows[0]) : null;
  }

  /** Seed 001's queries: active tokens; tokens unused for N days (never used counts as unused). */
  async list(filter: { active?: boolean; unusedDays?: number; project?: string } = {}, db: Queryable = this.pool): Promise<GatewayToken[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.active !== undefined) {
      args.push(filter.active);
      where.push(`is_active = $${args.length} and (revoked_at is null) = $${args.length}`);
    }
    if (filter.project) {
      args.push(filter.project);
      where.push(`project = $${args.length}`);
    }
    if (filter.unusedDays !== undefined) {
      args.push(filter.unusedDays);
      where.push(`(last_used_at is null or last_used_at < now() - make_interval(days => $${args.length}))`);
    }
    const r = await db.query<Row>(
      `select * from gateway_tokens ${where.length ? `where ${where.join(' and ')}` : ''} order by created_at desc limit 1000`,
      args,
    );
    return r.rows.map(rowToToken);
  }

  async revoke(jti: string, by: string, reason: string | null, db: Queryable = this.pool): Promise<GatewayToken | null> {
    const r = await db.query<Row>(
      `update gateway_tokens set is_active = false, revoked_at = coalesce(revoked_at, now()), revoked_by = $2, revoked_reason = $3
       where jti = $1 returning *`,
      [jti, by, reason],
    );
    return r.rows[0] ? rowToToken(r.rows[0]) : null;
  }

  async recordUse(batch: Map<string, { count: number; lastUsedAt: Date }>, db: Queryable = this.pool): Promise<void> {
    if (batch.size === 0) return;
    const ids = [...batch.keys()];
    const times = ids.map((id) => batch.get(id)!.lastUsedAt);
    await db.query(
      `update gateway_tokens t set last_used_at = greatest(coalesce(t.last_used_at, u.at), u.at)
       from unnest($1::text[], $2::timestamptz[]) as u(jti, at) where t.jti = u.jti`,
      [ids, times],
    );
  }
}
