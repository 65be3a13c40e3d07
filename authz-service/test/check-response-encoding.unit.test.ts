import { describe, expect, it } from 'vitest';
import { CHECK_METADATA, type CheckMetadata } from '@tollgate/common';
import { loadEnvoyProtos } from '@tollgate/proto';
import { deny, type Allow, type Decision, type DenyStatus } from '../src/check/decision.js';
import { rateLimitHeaders } from '../src/check/rate-limit-headers.js';
import { tooManyFailedAttempts } from '../src/check/refusal-limiter.js';
import { encodeCheckResponse } from '../src/grpc/check-response-encoding.js';
import { toCheckResponse } from '../src/grpc/check-server.js';

// protobufjs, as grpc-js would use it without the hand-written encoder: the loader's serializer
// (fromObject, then encode) and its deserializer (decode, then toObject with defaults).
const Check = loadEnvoyProtos().envoy.service.auth.v3.Authorization.service.Check;
const protobufjsEncode = (v: unknown) => Check.responseSerialize(v as never);
const protobufjsDecode = (b: Buffer) => Check.responseDeserialize(b);

const ALL_METADATA: Required<CheckMetadata> = {
  credential: 'api_key',
  user_id: 'user_ünïcödé_😀',
  key_id: 'key_1',
  token_id: 'tok_1',
  stripe_customer_id: 'cus_123',
  project: 'proj',
  service: 'svc',
  decision: 'allow',
  cost: '3',
  error_code: 'rate_limited',
  provider: 'openai',
  credential_source: 'operator',
  operator_credential_id: 'opc_1',
};

const keyMetadata: CheckMetadata = { credential: 'api_key', user_id: 'user_1', key_id: 'key_1', cost: '1' };
const tokenMetadata: CheckMetadata = { credential: 'service_token', token_id: 'jti-1', project: 'billing', service: 'worker' };
const rateHeaders = rateLimitHeaders({
  allowed: true,
  minute: { limit: 60, remaining: 59, resetMs: 30_000 },
  day: { limit: 1000, remaining: 10, resetMs: 3_600_000 },
  quota: { limit: 100_000, used: 99_995, remaining: 5, resetMs: 86_400_000 * 9 },
  retryAfterMs: 0,
});

function allowed(over: Partial<Allow> = {}): Allow {
  return {
    allow: true,
    upstreamHeaders: { 'x-user-id': 'user_1', 'x-api-key-id': 'key_1', 'x-api-key-scopes': 'read write' },
    removeHeaders: ['authorization', 'x-api-key', 'x-service-project', 'x-service-name', 'x-token-id'],
    responseHeaders: {},
    metadata: keyMetadata,
    outcome: 'allowed',
    ...over,
  };
}

const longValue = 'v'.repeat(200) + '€'.repeat(50) + '𝄞'.repeat(40); // lengths past one-byte varints

const SHAPES: [string, Decision, string?][] = [
  ['allowed key', allowed()],
  ['allowed key with rate-limit headers', allowed({ responseHeaders: rateHeaders })],
  [
    'allowed token',
    allowed({
      upstreamHeaders: { 'x-service-project': 'billing', 'x-service-name': 'worker', 'x-token-id': 'jti-1' },
      removeHeaders: ['authorization', 'x-api-key', 'x-user-id', 'x-api-key-id', 'x-api-key-scopes'],
      metadata: tokenMetadata,
    }),
  ],
  [
    'allowed with provider injection',
    allowed({
      upstreamHeaders: { 'x-user-id': 'user_1', 'x-api-key-id': 'key_1', 'x-api-key-scopes': '*', authorization: 'Bearer sk-provider-secret' },
      responseHeaders: rateHeaders,
      metadata: { ...keyMetadata, provider: 'openai', credential_source: 'operator', operator_credential_id: 'opc_1' },
    }),
  ],
  ['allowed fail-open', allowed({ outcome: 'allowed_fail_open' })],
  ['allowed with every metadata field', allowed({ metadata: ALL_METADATA })],
  ['allowed with nothing to add or remove', allowed({ upstreamHeaders: {}, removeHeaders: [], metadata: {} })],
  [
    'allowed with empty strings',
    allowed({ upstreamHeaders: { 'x-api-key-scopes': '' }, removeHeaders: [''], responseHeaders: { '': '' }, metadata: { user_id: '', key_id: '' } }),
  ],
  ['allowed with unicode and long values', allowed({ upstreamHeaders: { 'x-user-id': longValue }, metadata: { user_id: longValue, key_id: '鍵' } })],
  ['400 invalid path', deny(400, 'invalid_path', 'Path parameters (";") are not accepted in the request path')],
  ['400 provider required', deny(400, 'provider_required', 'This route needs a provider: send X-Provider')],
  ['401 missing credential', deny(401, 'missing_credential', 'No credential')],
  ['401 unknown key, with request id', deny(401, 'invalid_api_key', 'The API key is not valid (unknown key)'), 'req-123'],
  ['401 with a unicode request id', deny(401, 'invalid_token', 'The service token is not valid'), 'ид-😀'],
  ['402 billing suspended', deny(402, 'billing_suspended', 'The API key is suspended', { metadata: keyMetadata })],
  [
    '403 insufficient scope',
    deny(403, 'insufficient_scope', 'This API key lacks the "write" scope needed for POST /x', { metadata: keyMetadata, outcome: 'scope' }),
    'r-1',
  ],
  ['403 token route not allowed', deny(403, 'route_not_allowed', 'This service token (billing/worker) may not call /x', { metadata: tokenMetadata })],
  [
    '429 rate limited with rate-limit headers',
    deny(429, 'rate_limited', 'Rate limit exceeded; retry in 30 s', {
      headers: { ...rateHeaders, 'retry-after': '30' },
      metadata: keyMetadata,
    }),
    'abc',
  ],
  ['429 quota exceeded without rate-limit headers', deny(429, 'quota_exceeded', 'Monthly quota exhausted', { metadata: keyMetadata })],
  ['429 too many failed attempts', tooManyFailedAttempts(17)],
  ['503 unavailable', deny(503, 'unavailable', 'Rate limiting is unavailable; try again shortly', { metadata: keyMetadata, outcome: 'redis_down' })],
  ['503 with every metadata field', deny(503, 'provider_credential_unreadable', 'The stored openai credential cannot be used', { metadata: ALL_METADATA })],
  ['denied with an empty message and an empty request id', deny(403, 'insufficient_scope', ''), ''],
  ['denied with a long unicode message', deny(401, 'invalid_api_key', longValue), longValue],
];

describe('encodeCheckResponse', () => {
  it.each(SHAPES)('%s: decodes as protobufjs encodes it', (_name, decision, requestId) => {
    const answer = toCheckResponse(decision, requestId);
    const ours = encodeCheckResponse(answer);
    const theirs = protobufjsEncode(answer);
    expect(protobufjsDecode(ours)).toEqual(protobufjsDecode(theirs));
    // Same field order and the same explicitly written zero values as protobufjs, so also the same bytes.
    expect(Buffer.compare(ours, Buffer.from(theirs))).toBe(0);
  });

  it.each(SHAPES)('%s: with headroom, the same bytes after it', (_name, decision, requestId) => {
    const answer = toCheckResponse(decision, requestId);
    const framed = encodeCheckResponse(answer, 5);
    expect(framed.length).toBe(encodeCheckResponse(answer).length + 5);
    expect(Buffer.compare(framed.subarray(5), encodeCheckResponse(answer))).toBe(0);
  });

  it('answers every status a denial can have, as the HTTP status Envoy sends', () => {
    const statuses: DenyStatus[] = [400, 401, 402, 403, 429, 503];
    const names = statuses.map((s) => protobufjsDecode(encodeCheckResponse(toCheckResponse(deny(s, 'unavailable', 'x')))).deniedResponse?.status?.code);
    expect(names).toEqual(['BadRequest', 'Unauthorized', 'PaymentRequired', 'Forbidden', 'TooManyRequests', 'ServiceUnavailable']);
  });

  it('publishes every CHECK_METADATA field it is given', () => {
    const decoded = protobufjsDecode(encodeCheckResponse(toCheckResponse(allowed({ metadata: ALL_METADATA }))));
    const fields = decoded.dynamicMetadata?.fields as Record<string, { stringValue: string }>;
    expect(Object.keys(fields).sort()).toEqual(Object.values(CHECK_METADATA).sort());
    expect(fields[CHECK_METADATA.userId]!.stringValue).toBe(ALL_METADATA.user_id);
    expect(fields[CHECK_METADATA.decision]!.stringValue).toBe('allow');
  });

  it('matches protobufjs on generated shapes', () => {
    const pick = (i: number) => ['', 'a', 'x-ratelimit-limit', 'ü', '😀😀', 'v'.repeat(130), '\u0000\n"'][i % 7]!;
    for (let n = 0; n < 200; n++) {
      const headers = Object.fromEntries(Array.from({ length: n % 6 }, (_, i) => [`h${i}-${pick(n + i)}`, pick(n * 3 + i)]));
      const metadata = Object.fromEntries(
        Object.values(CHECK_METADATA)
          .slice(0, n % 14)
          .map((k, i) => [k, pick(n + i * 5)]),
      ) as CheckMetadata;
      const decision: Decision =
        n % 2
          ? allowed({ upstreamHeaders: headers, responseHeaders: headers, removeHeaders: Object.keys(headers), metadata })
          : deny(([400, 401, 402, 403, 429, 503] as const)[n % 6]!, 'unavailable', pick(n), { headers, ...(n % 4 ? { metadata } : {}) });
      const answer = toCheckResponse(decision, n % 3 ? pick(n) : undefined);
      expect(Buffer.compare(encodeCheckResponse(answer), Buffer.from(protobufjsEncode(answer)))).toBe(0);
    }
  });
});
