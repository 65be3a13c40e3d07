import type { Schemas } from '@tollgate/sdk';
import Table from 'cli-table3';

/** A key as the API returns it; `key` (the secret) only from create and rotate. */
export type KeyRecord = Schemas['KeyWithSecret'];

export interface Output {
  out: (text: string) => void;
  err: (text: string) => void;
}

const dash = (v: unknown) => (v === null || v === undefined || v === '' ? '-' : String(v));
const limits = (k: KeyRecord) => `${dash(k.rate_limit_per_minute)}/min, ${dash(k.rate_limit_per_day)}/day`;
/** Dates to the minute for tables (`none` for no date); --json has them exact. */
export const minute = (iso: string | null, none = '-') => (iso ? iso.slice(0, 16).replace('T', ' ') + 'Z' : none);
const when = (iso: string | null) => minute(iso);

/** A borderless table with a plain header row. */
export function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const r of rows) t.push(r);
  return t.toString();
}
const scopesOf = (k: KeyRecord) => (k.permission_set ? [`set:${k.permission_set}`, ...k.scopes] : k.scopes).join(' ') || '-';

export function keysTable(keys: KeyRecord[]): string {
  if (keys.length === 0) return 'No keys.';
  const table = new Table({
    head: ['ID', 'USER', 'NAME', 'PREFIX', 'STATUS', 'SCOPES', 'LIMITS', 'EXPIRES', 'LAST USED', 'USES'],
    style: { head: [], border: [] },
  });
  for (const k of keys) {
    table.push([k.id, k.user_id, k.name, k.key_prefix, k.status, scopesOf(k), limits(k), when(k.expires_at), when(k.last_used_at), k.usage_count]);
  }
  return table.toString();
}

export function keyDetails(k: KeyRecord): string {
  const table = new Table({ style: { head: [], border: [] } });
  const rows: [string, string][] = [
    ['id', k.id],
    ['user', k.user_id],
    ['name', k.name],
    ['description', dash(k.description)],
    ['prefix', k.key_prefix],
    ['status', k.status + (k.revoked_reason ? ` (${k.revoked_reason})` : '')],
    ['permission set', dash(k.permission_set)],
    ['scopes', k.scopes.join(' ') || '-'],
    ['effective scopes', k.effective_scopes.join(' ') || '-'],
    ['limits', limits(k) + (k.monthly_quota !== null ? `, ${k.monthly_quota}/month` : '')],
    ['plan', dash(k.plan)],
    [
      'effective limits',
      `${dash(k.effective_limits.rate_limit_per_minute)}/min, ${dash(k.effective_limits.rate_limit_per_day)}/day, ${dash(k.effective_limits.monthly_quota)}/month`,
    ],
    ['expires', dash(k.expires_at)],
    ['last used', dash(k.last_used_at)],
    ['uses', String(k.usage_count)],
    ['stripe customer', dash(k.stripe_customer_id)],
    ['metadata', Object.keys(k.metadata).length ? JSON.stringify(k.metadata) : '-'],
    ['created', k.created_at],
    ['updated', k.updated_at],
  ];
  if (k.revoked_at) rows.push(['revoked', k.revoked_at]);
  if (k.previous_key_expires_at) rows.push(['old secret works until', k.previous_key_expires_at]);
  for (const [name, value] of rows) table.push({ [name]: value });
  return table.toString();
}

/** The plaintext, set apart so nobody misses that it is shown once. */
export function secretNotice(key: string): string {
  return `\nKey (shown once; store it now, it cannot be read back):\n\n  ${key}\n`;
}
