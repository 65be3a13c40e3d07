import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TestStack } from '@tollgate/devstack';
import { createKey, httpStatusOf, metricValue, stackCheck, startAuthzStack, type CheckFn, type TestAuthz } from './helpers.js';

// Hostile input at the Check, property-based: whatever the headers, method and path, the answer
// is a decision (never an internal error), every denial is a JSON {error, message}, and no
// credential other than a real key is ever allowed.
const infra = inject('infra');
let service: TestAuthz;
let check: CheckFn;
let validKey: string;
const stack = new TestStack();

beforeAll(async () => {
  ({ authz: service } = await startAuthzStack(stack, infra, 'fuzz', {
    config: {
      PROVIDER_ROUTES: JSON.stringify([{ prefix: '/rooms/', default_provider: 'daily' }]),
      VAULT_MASTER_KEYS: `k:${Buffer.alloc(32, 7).toString('base64')}`,
      GATEWAY_JWT_SECRET: 'kid1:' + 's'.repeat(40),
    },
  }));
  check = stackCheck(stack, service);
  validKey = (await createKey(service, { permissionSet: 'read_only', rateLimitPerMinute: 1_000_000 })).plaintext;
});

afterAll(() => stack.stop());

const headerName = fc.oneof(
  fc.constantFrom('authorization', 'x-api-key', 'x-provider', 'x-provider-auth', 'x-user-id', 'x-request-id', 'cookie'),
  fc.stringMatching(/^[a-z0-9-]{1,20}$/),
);
const nasty = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'grapheme', maxLength: 50 }),
  fc.constantFrom(
    'Bearer ',
    'Bearer',
    'bearer sk_',
    'Bearer sk_' + 'A'.repeat(30),
    'Basic Zm9vOmJhcg==',
    'Bearer a.b.c',
    'Bearer eyJhbGciOiJub25lIn0.e30.',
    '\r\nx-user-id: admin',
    "sk_' OR 1=1 --",
    'sk_\u0000\u0000',
    'Bearer sk_x,sk_y',
  ),
  fc.string({ minLength: 5000, maxLength: 20_000 }),
  fc.constant(''),
);
const headers = fc.dictionary(headerName, nasty, { maxKeys: 6 });
const method = fc.oneof(fc.constantFrom('GET', 'POST', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH'), fc.string({ maxLength: 12 }));
const path = fc.oneof(
  fc.constantFrom('/hello', '/rooms/x', '/admin', '/captionacc/prefect/api/x'),
  fc.string({ maxLength: 300 }).map((s) => `/${s}`),
);

describe('Check under hostile input', () => {
  it('always decides, denies with a JSON body, and never allows without the real key', async () => {
    const errorsBefore = await metricValue(service, 'tollgate_authz_checks_total', { outcome: 'error' });
    await fc.assert(
      fc.asyncProperty(headers, method, path, async (h, m, p) => {
        const res = await check({ method: m || 'GET', path: p, headers: h });
        const status = httpStatusOf(res);
        expect([200, 400, 401, 403, 429, 503]).toContain(status);
        if (status !== 200) {
          const body = JSON.parse(res.deniedResponse!.body);
          expect(typeof body.error).toBe('string');
          expect(typeof body.message).toBe('string');
        } else {
          // Only the one real key can open the gate.
          expect(Object.values(h).join('\n')).toContain(validKey);
        }
      }),
      { numRuns: 300 },
    );
    expect(await metricValue(service, 'tollgate_authz_checks_total', { outcome: 'error' })).toBe(errorsBefore);
  });

  it('a valid key wrapped in hostile company still decides sanely', async () => {
    await fc.assert(
      fc.asyncProperty(headers, path, async (h, p) => {
        const res = await check({ method: 'GET', path: p, headers: { ...h, authorization: `Bearer ${validKey}` } });
        expect([200, 400, 401, 403]).toContain(httpStatusOf(res));
      }),
      { numRuns: 150 },
    );
  });
});
