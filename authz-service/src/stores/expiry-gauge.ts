import { Gauge, type Registry } from 'prom-client';
import type pg from 'pg';

/** How far ahead "expiring soon" looks: the alert (deploy/prometheus) pages a week ahead. */
const EXPIRY_WINDOW = '7 days';

/**
 * Seed 001 asks operators to be alerted before service tokens expire; keys with an expiry date
 * break clients the same way. Counted at each scrape (two indexed counts) so the number is
 * never older than the scrape; a failed query leaves the series out rather than reporting 0.
 */
export function registerCredentialExpiryGauge(registry: Registry, pool: pg.Pool): void {
  new Gauge({
    name: 'tollgate_authz_credentials_expiring',
    help: `Active credentials (kind: api_key, service_token) that expire within the next ${EXPIRY_WINDOW}`,
    labelNames: ['kind'],
    registers: [registry],
    async collect() {
      this.reset();
      // Postgres down must not take /metrics down with it (its own alerts say so).
      const result = await pool
        .query<{ keys: string; tokens: string }>(
          `select
           (select count(*) from api_keys
             where is_active and expires_at > now() and expires_at <= now() + interval '${EXPIRY_WINDOW}') as keys,
           (select count(*) from gateway_tokens
             where is_active and expires_at > now() and expires_at <= now() + interval '${EXPIRY_WINDOW}') as tokens`,
        )
        .catch(() => null);
      const row = result?.rows[0];
      if (!row) return;
      this.set({ kind: 'api_key' }, Number(row.keys));
      this.set({ kind: 'service_token' }, Number(row.tokens));
    },
  });
}
