/**
 * Where a client's credential comes from: `Authorization: Bearer <key>` or `X-API-Key: <key>`.
 * Two different credentials in one request are refused rather than guessed between.
 */
type CredentialSource = 'authorization' | 'x-api-key';

export type ExtractedCredential =
  | { ok: true; value: string; source: CredentialSource }
  | { ok: false; reason: 'missing' | 'malformed' | 'conflicting'; message: string };

const BEARER_RE = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

export function extractCredential(headers: Record<string, string | undefined>): ExtractedCredential {
  const authorization = headers['authorization'];
  const apiKeyHeader = headers['x-api-key']?.trim();
  let fromAuthorization: string | undefined;
  if (authorization !== undefined && authorization !== '') {
    const m = BEARER_RE.exec(authorization);
    if (!m) {
      return { ok: false, reason: 'malformed', message: 'Authorization header must be "Bearer <key>"' };
    }
    fromAuthorization = m[1];
  }
  if (fromAuthorization && apiKeyHeader && fromAuthorization !== apiKeyHeader) {
    return { ok: false, reason: 'conflicting', message: 'Authorization and X-API-Key carry different credentials' };
  }
  if (fromAuthorization) return { ok: true, value: fromAuthorization, source: 'authorization' };
  if (apiKeyHeader) {
    // Envoy joins repeated headers with commas; a key never contains one.
    if (apiKeyHeader.includes(',') || /\s/.test(apiKeyHeader)) {
      return { ok: false, reason: 'malformed', message: 'X-API-Key must hold exactly one key' };
    }
    return { ok: true, value: apiKeyHeader, source: 'x-api-key' };
  }
  return { ok: false, reason: 'missing', message: 'An API key is required: send "Authorization: Bearer <key>" or "X-API-Key: <key>"' };
}

/** Three base64url segments: a JWT (service token), handled by the token verifier, not the key store. */
export function looksLikeJwt(value: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(value);
}
