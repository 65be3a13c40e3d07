/**
 * Idempotency-Key handling for the management API's POSTs: what identifies a request, and what
 * of its answer may be remembered for a replay.
 */

/** 1 to 255 visible ASCII characters: what the handlers accept and /openapi.json documents. */
export const IDEMPOTENCY_KEY_PATTERN = '^[\\x21-\\x7e]{1,255}$';

/** A POST's Idempotency-Key with what identifies the request it was first used for. */
export interface IdempotencyRequest {
  key: string;
  /** Method, route and body: the same key with anything else is refused. */
  fingerprint: unknown;
}

/** JSON with object keys sorted, so equal bodies hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Response bodies are remembered for replay without the plaintext key: secrets are never stored. */
export function withoutSecret(body: unknown): unknown {
  if (!body || typeof body !== 'object') return body;
  const { key: _secret, ...rest } = body as Record<string, unknown>;
  return rest;
}
