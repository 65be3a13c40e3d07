import { createLogger } from '@tollgate/common';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { Checker } from '../src/check/checker.js';
import { deny, type CheckInput, type Decision } from '../src/check/decision.js';
import { RefusalLimiter } from '../src/check/refusal-limiter.js';
import { loadEnvoyProtos, type CheckResponse } from '@tollgate/proto';
import { decodeCheckRequest } from '../src/grpc/check-request-decoding.js';
import { encodeCheckResponse, type CheckAnswer } from '../src/grpc/check-response-encoding.js';
import { authorizationHandlers, createCheckMetrics } from '../src/grpc/check-server.js';

// The handler sees what the Check method's deserializer makes of Envoy's bytes, and Envoy what its serializer writes.
const Check = loadEnvoyProtos().envoy.service.auth.v3.Authorization.service.Check;

/** A Checker whose lookups stay in flight until release(), so a burst overlaps like a fast flood. */
function slowChecker(answer: () => Decision) {
  const pending: (() => void)[] = [];
  let lookups = 0;
  const checker = {
    check(input: CheckInput): Promise<Decision> {
      if (!input.cacheOnly) lookups++;
      return new Promise((resolve) => pending.push(() => resolve(answer())));
    },
  } as unknown as Checker;
  return {
    checker,
    lookups: () => lookups,
    release: () => {
      for (const resolve of pending.splice(0)) resolve();
    },
  };
}

function burst(checker: Checker, limiter: RefusalLimiter, n: number): Promise<{ code?: number; status?: number }>[] {
  const handlers = authorizationHandlers(checker, createCheckMetrics(new Registry()), createLogger({ service: 'test', level: 'silent' }), limiter);
  const request = decodeCheckRequest(
    Buffer.from(
      Check.requestSerialize({
        attributes: {
          source: { address: { socketAddress: { address: '198.51.100.9' } } },
          request: { http: { method: 'GET', path: '/v1/x', headers: { authorization: 'Bearer tg_unknown' } } },
        },
      }),
    ),
  );
  return Array.from(
    { length: n },
    () =>
      new Promise((resolve) =>
        handlers.Check(
          { request } as never,
          ((_err: unknown, answer: CheckAnswer) => {
            const res = Check.responseDeserialize(encodeCheckResponse(answer)) as CheckResponse;
            resolve({ code: res.status?.code, status: res.deniedResponse?.status?.code as never });
          }) as never,
        ),
      ),
  );
}

describe('refusal limit under a concurrent burst', () => {
  it('lets at most the budget of Checks reach the key lookup', async () => {
    const limiter = new RefusalLimiter(5, 100, () => 0);
    const fake = slowChecker(() => deny(401, 'invalid_api_key', 'unknown key'));
    const answers = burst(fake.checker, limiter, 50);
    fake.release();
    const results = await Promise.all(answers);
    expect(fake.lookups()).toBe(5);
    expect(results.filter((r) => r.status === ('TooManyRequests' as never)).length).toBe(45);
  });

  it('refunds the token of a Check that was not refused', async () => {
    const limiter = new RefusalLimiter(5, 100, () => 0);
    const valid: Decision = { allow: true, upstreamHeaders: {}, removeHeaders: [], responseHeaders: {}, metadata: { user_id: 'u1' }, outcome: 'allowed' };
    const fake = slowChecker(() => valid);
    const answers = burst(fake.checker, limiter, 20);
    // All 20 are in flight at once: the first 5 hold the budget, the rest ask the cache only.
    expect(fake.lookups()).toBe(5);
    fake.release();
    await Promise.all(answers);
    expect(limiter.reserve('198.51.100.9')).toBe(0); // the 5 valid keys gave their tokens back
    for (let i = 0; i < 4; i++) expect(limiter.reserve('198.51.100.9')).toBe(0);
    expect(limiter.reserve('198.51.100.9')).toBeGreaterThan(0);
  });
});
