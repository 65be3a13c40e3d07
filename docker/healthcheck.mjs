// Container health check for Tollgate's images (slim Node images have no curl or wget).
// Usage: node healthcheck.mjs [path]   (default /health/live)
// The port is read from the variable HEALTHCHECK_PORT_VAR names (e.g. AUTHZ_HTTP_PORT), so a
// port changed through the environment is followed without editing the image.
const portVar = process.env.HEALTHCHECK_PORT_VAR;
const port = portVar ? process.env[portVar] : undefined;
if (!port) {
  console.error(`healthcheck: HEALTHCHECK_PORT_VAR${portVar ? `=${portVar} names an unset variable` : ' is not set'}`);
  process.exit(2);
}
const path = process.argv[2] ?? '/health/live';
try {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2500) });
  if (!res.ok) console.error(`healthcheck: ${path} answered ${res.status}`);
  process.exit(res.ok ? 0 : 1);
} catch (err) {
  console.error(`healthcheck: ${path} unreachable: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
