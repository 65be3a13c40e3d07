/**
 * The one rule for "is this path under that prefix", used by every path decision the gateway
 * makes: route scopes (ROUTE_SCOPES), path-limited scopes (`read:/reports/`), service-token
 * routes (a token's `routes` and SERVICE_TOKEN_ROUTES), the `service_route:` scope, provider
 * routes and the management API's "does the owner hold this scope" test. docs/authz.md
 * ("Path matching") is the user-facing statement of it.
 *
 * - Segments: a prefix matches whole segments only. `/reports` and `/reports/` both match
 *   `/reports` and `/reports/x`, never `/reports-admin`. `/` matches every path.
 * - Case: a rule that *restricts* (it demands a scope or a service token, or injects a
 *   credential) matches whatever the ASCII case of the path, so an upstream that routes
 *   case-insensitively cannot be reached around it with `/ADMIN/`. A *grant* (a key's path
 *   scope, a token's route) matches the exact case only, as Envoy's own prefix routes do. A
 *   different casing can therefore only ever be refused, never let further in.
 * - Path parameters (`;`): paths carrying them are refused before any matching
 *   (`hasPathParameters`), because upstreams disagree on them (Tomcat and Spring drop
 *   `;jsessionid=…` from each segment, so `/admin;x/users` is `/admin/users` there, and
 *   `/reports/..;/admin` is `/admin`) while Envoy leaves them in.
 */
export type PrefixKind = 'grant' | 'restrict';

// ASCII only: Unicode case folding can change a string's length and what it means to a router.
const asciiLower = (s: string): string => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());

export function pathWithin(path: string, prefix: string, kind: PrefixKind): boolean {
  const base = prefix.replace(/\/+$/, '');
  if (base === '') return path.startsWith('/');
  const [p, b] = kind === 'restrict' ? [asciiLower(path), asciiLower(base)] : [path, base];
  return p === b || p.startsWith(`${b}/`);
}

/** A `;` in the path, raw or percent-encoded (the query string is not part of the path). */
export function hasPathParameters(path: string): boolean {
  return /;|%3b/i.test(path);
}
