import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** No inline script, no eval, no framing, no plugins: the console runs only its own hashed files. */
const CONSOLE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'";

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

function secure(reply: FastifyReply): FastifyReply {
  return reply.header('content-security-policy', CONSOLE_CSP).header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer');
}

/**
 * The web console's static files at /console/ (docs/console.md). Vite names each asset by a hash
 * of its content, so assets are cached for a year; index.html names the current ones and is
 * revalidated on every load. Any other path under /console/ is a deep link into the SPA and gets
 * index.html too.
 */
export function registerConsoleStatic(app: FastifyInstance, distDir: string): void {
  const root = normalize(distDir + sep);
  const index = async (request: FastifyRequest, reply: FastifyReply) => {
    const html = await readFile(join(root, 'index.html')).catch(() => null);
    if (!html) {
      return secure(reply)
        .code(503)
        .header('cache-control', 'no-store')
        .send({
          error: 'unavailable',
          message: `The console is not built: no index.html in ${distDir} (run ./scripts/pnpm console:build)`,
          request_id: request.id,
        });
    }
    return secure(reply).header('cache-control', 'no-cache').type(TYPES['.html']!).send(html);
  };
  app.get('/console', async (_request, reply) => reply.redirect('/console/', 301));
  app.get('/console/*', async (request, reply) => {
    const rest = (request.params as { '*': string })['*'];
    if (!rest.startsWith('assets/')) return index(request, reply);
    const file = normalize(join(root, rest));
    // A path that climbs out of the assets folder (../) is a miss, never a read elsewhere.
    const body = file.startsWith(join(root, 'assets') + sep) ? await readFile(file).catch(() => null) : null;
    if (!body)
      return secure(reply).code(404).header('cache-control', 'no-store').send({ error: 'not_found', message: 'No such console asset', request_id: request.id });
    return secure(reply)
      .header('cache-control', 'public, max-age=31536000, immutable')
      .type(TYPES[extname(file)] ?? 'application/octet-stream')
      .send(body);
  });
}
