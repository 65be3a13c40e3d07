/**
 * A request path without its query string or fragment: what the gateway matches scopes and
 * routes on, and what billing stores (so a query never lands in a usage row).
 */
export function pathOnly(rawPath: string): string {
  const q = rawPath.search(/[?#]/);
  return q === -1 ? rawPath : rawPath.slice(0, q);
}
