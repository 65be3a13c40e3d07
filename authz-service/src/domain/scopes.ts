import { pathWithin } from './path-prefix.js';

/**
 * How scopes map to routes.
 *
 * A request needs one scope, found in this order:
 *  1. the first ROUTE_SCOPES rule whose prefix matches the path (and whose methods, if listed,
 *     include the method) names the scope it needs, e.g. {"prefix":"/admin/","scope":"admin"};
 *  2. otherwise `read` for GET, HEAD and OPTIONS, and `write` for every other method.
 *
 * A key holds the scopes of its permission set plus its own scopes. It satisfies a need for
 * scope S on path P when it holds:
 *  - `*` (everything), or
 *  - S itself, or
 *  - `S:<prefix>` where P is under <prefix> (e.g. `read:/reports/` reads /reports and below).
 * `write` does not imply `read`: a write-only key (a webhook sender, say) stays write-only.
 * "Under" is path-prefix.ts's rule: whole segments; rule prefixes ignore case, grants do not.
 *
 * Service-token-only routes (SERVICE_TOKEN_ROUTES) are closed to API keys on top of this: only
 * `service_route:<prefix>` opens paths under <prefix> to a key, and `*` does not imply it.
 */
export interface RouteScopeRule {
  prefix: string;
  methods?: string[];
  scope: string;
}

export const BUILTIN_PERMISSION_SETS: Readonly<Record<string, readonly string[]>> = {
  read_only: ['read'],
  full_access: ['*'],
};

export function permissionSets(custom: Record<string, string[]> | undefined): Record<string, readonly string[]> {
  return { ...custom, ...BUILTIN_PERMISSION_SETS };
}

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function requiredScope(method: string, path: string, rules: readonly RouteScopeRule[] = []): string {
  const m = method.toUpperCase();
  for (const rule of rules) {
    if (pathWithin(path, rule.prefix, 'restrict') && (!rule.methods || rule.methods.includes(m))) return rule.scope;
  }
  return READ_METHODS.has(m) ? 'read' : 'write';
}

export function effectiveScopes(key: { scopes: readonly string[]; permissionSet: string | null }, sets: Record<string, readonly string[]>): string[] {
  const fromSet = key.permissionSet ? (sets[key.permissionSet] ?? []) : [];
  return [...new Set([...fromSet, ...key.scopes])];
}

export function scopeAllows(held: readonly string[], needed: string, path: string): boolean {
  for (const s of held) {
    if (s === '*' || s === needed) return true;
    if (s.startsWith(`${needed}:/`) && pathWithin(path, s.slice(needed.length + 1), 'grant')) return true;
  }
  return false;
}

/** The scope that opens a service-token-only route to an API key: `service_route:<prefix>`. */
export const SERVICE_ROUTE_SCOPE = 'service_route';

/** The scope a Tollgate key needs to call the management API (for its own user's keys only). */
export const MANAGE_SCOPE = 'keys:manage';

/**
 * Whether `held` grants `wanted` wherever `wanted` would: `*`, the scope itself, its bare name
 * (`read` grants `read:/reports/`) or a wider path (`read:/a/` grants `read:/a/b/`, by the
 * gateway's own rule, path-prefix.ts). `*` grants no `service_route:` scope, as at the Check.
 */
export function scopeGrants(held: readonly string[], wanted: string): boolean {
  const [base, ...rest] = wanted.split(':');
  const suffix = rest.join(':');
  const pathScoped = suffix.startsWith('/');
  for (const h of held) {
    if (h === wanted) return true;
    if (h === '*' && base !== SERVICE_ROUTE_SCOPE) return true;
    if (pathScoped && h === base) return true;
    if (pathScoped && h.startsWith(`${base}:/`) && pathWithin(suffix, h.slice(base!.length + 1), 'grant')) return true;
  }
  return false;
}

/**
 * A key's scopes limited to a plan's (docs/billing.md, "Plans"): what both grant. A key scope
 * the plan grants stays (`read:/a/` under a plan's `read`), and a plan scope the key grants is
 * added (a `*` key on a plan of `read` gets `read`). `keys:manage` is kept: it is about the
 * management API, which a plan (what the customer bought at the gateway) does not govern.
 */
export function limitScopes(held: readonly string[], ceiling: readonly string[]): string[] {
  const kept = held.filter((s) => s === MANAGE_SCOPE || scopeGrants(ceiling, s));
  const fromCeiling = ceiling.filter((s) => scopeGrants(held, s));
  return [...new Set([...kept, ...fromCeiling])];
}

/** Whether the held scopes open `path` (on a service-token-only route) to an API key. */
export function serviceRouteAllowed(held: readonly string[], path: string): boolean {
  const marker = `${SERVICE_ROUTE_SCOPE}:/`;
  return held.some((s) => s.startsWith(marker) && pathWithin(path, s.slice(SERVICE_ROUTE_SCOPE.length + 1), 'grant'));
}
