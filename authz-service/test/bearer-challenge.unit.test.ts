import { describe, expect, it } from 'vitest';
import { bearerChallenge, unauthorizedChallenge } from '../src/domain/bearer-challenge.js';
import { deny } from '../src/check/decision.js';

// The one RFC 6750 challenge builder, which the gateway and the management API both answer with.
describe('WWW-Authenticate challenges', () => {
  it('names only the realm when the request carried no credential (RFC 6750 §3.1)', () => {
    expect(bearerChallenge()).toBe('Bearer realm="tollgate"');
    expect(unauthorizedChallenge('missing_credential')).toBe('Bearer realm="tollgate"');
  });

  it('says invalid_token for every other 401', () => {
    expect(bearerChallenge({ error: 'invalid_token' })).toBe('Bearer realm="tollgate", error="invalid_token"');
    for (const code of ['invalid_credential', 'invalid_api_key', 'key_revoked', 'token_expired'] as const) {
      expect(unauthorizedChallenge(code), code).toBe('Bearer realm="tollgate", error="invalid_token"');
    }
  });

  it('names the missing scope on insufficient_scope', () => {
    expect(bearerChallenge({ error: 'insufficient_scope', scope: 'write:/reports/' })).toBe(
      'Bearer realm="tollgate", error="insufficient_scope", scope="write:/reports/"',
    );
  });

  it('is what a gateway 401 carries, and only a 401', () => {
    expect(deny(401, 'missing_credential', 'm').headers['www-authenticate']).toBe('Bearer realm="tollgate"');
    expect(deny(401, 'invalid_api_key', 'm').headers['www-authenticate']).toBe('Bearer realm="tollgate", error="invalid_token"');
    expect(deny(429, 'rate_limited', 'm').headers['www-authenticate']).toBeUndefined();
  });
});
