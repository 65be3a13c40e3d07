import { describe, expect, it } from 'vitest';
import { HttpError } from '@tollgate/common';
import { scopeCovered } from '../src/http/auth.js';
import { decodeCursor, encodeCursor } from '../src/http/key-records.js';
import { KEY_CURSOR_RE } from '../src/http/schemas/keys.js';
import { openApiPath } from '../src/http/openapi.js';

describe('scopeCovered (owners cannot grant more than they hold)', () => {
  it.each([
    [['*'], 'write', true],
    [['read'], 'read', true],
    [['read'], 'read:/reports/', true],
    [['read:/reports/'], 'read:/reports/2024/', true],
    [['read:/reports/'], 'read:/admin/', false],
    [['read:/reports/'], 'read', false],
    [['read'], 'write', false],
    [['read'], '*', false],
    [['keys:manage'], 'keys:manage', true],
    [['keys'], 'keys:manage', false],
    // Path scopes cover whole segments only (path-prefix.ts).
    [['read:/reports'], 'read:/reports/2024/', true],
    [['read:/reports/'], 'read:/reports', true],
    [['read:/reports'], 'read:/reports-admin/', false],
    [['read:/reports/'], 'read:/Reports/', false],
    // Service-token-only routes are the operator's to open: no owner key covers them.
    [['*'], 'service_route:/captionacc/prefect/api/', false],
    [['service_route:/captionacc/prefect/api/'], 'service_route:/captionacc/prefect/api/', false],
  ])('%j covers %s: %s', (held, wanted, expected) => {
    expect(scopeCovered(held, wanted)).toBe(expected);
  });
});

describe('page cursors', () => {
  it('round-trip and match the pattern the list schema documents', () => {
    const c = { createdAtMicros: '1763846400123456', id: 'key_0123456789abcdefABCD' };
    const encoded = encodeCursor(c);
    expect(encoded).toMatch(KEY_CURSOR_RE);
    expect(decodeCursor(encoded)).toEqual(c);
  });

  it('refuse anything else with a 400', () => {
    for (const bad of [
      '',
      'abc',
      encodeCursor({ createdAtMicros: '1', id: 'key_x' }),
      "1.key_0123456789abcdefABCD' or 1=1",
      '12345678901234567.key_0123456789abcdefABCD',
    ]) {
      expect(() => decodeCursor(bad)).toThrow(HttpError);
    }
  });
});

it('writes Fastify paths in OpenAPI form', () => {
  expect(openApiPath('/api/keys/:id/revoke')).toBe('/api/keys/{id}/revoke');
  expect(openApiPath('/api/keys/:user_id')).toBe('/api/keys/{user_id}');
});
