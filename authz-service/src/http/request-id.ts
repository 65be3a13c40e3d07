import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The management API's request id (Fastify's `request.id`), which every error body carries and
 * the `x-request-id` response header repeats, so a user can quote it. A proxy's UUID (Envoy
 * generates one per request) is kept so both sides log the same id; anything else a client sends
 * is ignored, so an id in our logs is always one we could have made, never arbitrary text.
 */
export function managementRequestId(req: IncomingMessage): string {
  const sent = req.headers['x-request-id'];
  return typeof sent === 'string' && UUID.test(sent) ? sent.toLowerCase() : randomUUID();
}
