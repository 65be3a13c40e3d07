import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CHECK_METADATA, ConfigError, EXT_AUTHZ_METADATA_NAMESPACE } from '@tollgate/common';
import { ENVOY_CONFIG_PATH } from '@tollgate/devstack';
import { loadBillingConfig } from '../src/config.js';
import { DEFAULT_BILLABLE_RULE, isBillable, parseBillableRule } from '../src/domain/billable.js';
import { meterEventFor } from '../src/domain/meter-routing.js';
import { fromAlsEntry, fromJsonLogLine, stripQuery } from '../src/domain/usage-record.js';
import type { HTTPAccessLogEntry } from '@tollgate/proto';
import { alsEntry } from './helpers.js';
import { classifyStripeError, parseRetryAfter } from '../src/stripe/meter-client.js';
import { backoffMs } from '../src/stripe/rate-limiter.js';
import { lastClosedWindow } from '../src/stripe/stripe-billing.js';
import { resolveUsageRange, UsageRangeError } from '@tollgate/usage-model';

describe('billable rule', () => {
  it('bills everything but 429 and 5xx by default', () => {
    expect([200, 201, 301, 400, 404].map((s) => isBillable(DEFAULT_BILLABLE_RULE, s))).toEqual([true, true, true, true, true]);
    expect([429, 500, 503, 0].map((s) => isBillable(DEFAULT_BILLABLE_RULE, s))).toEqual([false, false, false, false]);
  });

  it('takes codes and classes, and names what it cannot read', () => {
    const rule = parseBillableRule('4xx, 5xx ,301');
    expect(isBillable(rule, 404)).toBe(false);
    expect(isBillable(rule, 301)).toBe(false);
    expect(isBillable(rule, 200)).toBe(true);
    expect(() => parseBillableRule('5xx,teapot')).toThrow(/teapot/);
  });
});

describe('configuration', () => {
  it('names every bad variable', () => {
    try {
      loadBillingConfig({ BILLING_NON_BILLABLE_STATUSES: '9xx', STRIPE_API_BASE: 'ftp://x', BILLING_GRPC_PORT: 'abc' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const vars = (err as ConfigError).problems.map((p) => p.variable).sort();
      expect(vars).toEqual(['BILLING_GRPC_PORT', 'BILLING_NON_BILLABLE_STATUSES', 'DATABASE_URL', 'STRIPE_API_BASE']);
    }
  });

  it('has Stripe off without a key', () => {
    const c = loadBillingConfig({ DATABASE_URL: 'postgres://x@127.0.0.1/db' });
    expect(c.STRIPE_API_KEY).toBeUndefined();
    expect(c.BILLING_GRPC_PORT).toBe(9292);
    expect(c.BILLING_HTTP_PORT).toBe(9293);
    expect(c.STRIPE_AGGREGATION_INTERVAL_SECONDS).toBe(60);
  });
});

/** An entry as the gRPC stream delivers it: protobufjs marks each Struct value's kind. */
function decodedAls(opts: Parameters<typeof alsEntry>[0]): HTTPAccessLogEntry {
  const entry = alsEntry(opts);
  for (const struct of Object.values(entry.commonProperties?.metadata?.filterMetadata ?? {}))
    for (const v of Object.values(struct.fields ?? {})) Object.assign(v, { kind: 'stringValue' });
  return entry as HTTPAccessLogEntry;
}

describe('JSON access-log lines', () => {
  const rule = DEFAULT_BILLABLE_RULE;
  it('reads the fields envoy.yaml writes, with null or "-" as absent', () => {
    const r = fromJsonLogLine(
      JSON.stringify({
        request_id: 'r1',
        start_time: '2030-01-01T00:00:00.123Z',
        method: 'PUT',
        path: '/a/b?c=d',
        status: 204,
        request_bytes: 5,
        response_bytes: 0,
        duration_ms: 9,
        user_id: 'u',
        key_id: 'k',
        token_id: null,
        credential: '-',
        stripe_customer_id: '-',
      }),
      rule,
    );
    expect(r).toEqual({
      record: {
        requestId: 'r1',
        keyId: 'k',
        userId: 'u',
        credential: 'api_key',
        stripeCustomerId: null,
        project: null,
        service: null,
        cost: 1,
        provider: null,
        credentialSource: null,
        operatorCredentialId: null,
        method: 'PUT',
        path: '/a/b',
        status: 204,
        requestBytes: 5,
        responseBytes: 0,
        durationMs: 9,
        startedAt: new Date('2030-01-01T00:00:00.123Z'),
        decision: 'allow',
        errorCode: null,
        billable: true,
        source: 'file',
      },
    });
  });

  const line = (fields: Record<string, unknown>) =>
    JSON.stringify({ request_id: 'r2', method: 'POST', path: '/x', status: 403, user_id: 'u', key_id: 'k', credential: 'api_key', ...fields });

  it('never bills what the gateway refused, whatever the status; an upstream’s own 4xx stays billable', () => {
    for (const [status, error_code] of [
      [403, 'insufficient_scope'],
      [400, 'provider_credential_missing'],
      [429, 'rate_limited'],
      [200, 'odd'],
    ] as const) {
      const r = fromJsonLogLine(line({ status, decision: 'deny', error_code }), rule);
      expect(r).toMatchObject({ record: { status, decision: 'deny', errorCode: error_code, billable: false } });
    }
    expect(fromJsonLogLine(line({ status: 403, decision: 'allow', error_code: '-' }), rule)).toMatchObject({
      record: { decision: 'allow', errorCode: null, billable: true },
    });
    // Written by an authz-service older than the field: the status rule alone, as before.
    expect(fromJsonLogLine(line({ status: 403 }), rule)).toMatchObject({ record: { decision: 'allow', billable: true } });
    expect(fromJsonLogLine(line({ status: 429 }), rule)).toMatchObject({ record: { decision: 'allow', billable: false } });
  });

  it('records service tokens without a user, attributed to the token, its project and service', () => {
    const r = fromJsonLogLine(
      line({
        status: 200,
        user_id: '-',
        key_id: '-',
        token_id: 'jti-1',
        credential: 'service_token',
        project: 'captionacc',
        service: 'api',
        decision: 'allow',
      }),
      rule,
    );
    expect(r).toMatchObject({ record: { keyId: 'jti-1', userId: null, credential: 'service_token', project: 'captionacc', service: 'api', billable: true } });
    // An API key still needs its owner.
    expect(fromJsonLogLine(line({ user_id: '-' }), rule)).toEqual({ skip: 'no_identity' });
  });

  it('records cost units and which provider credential served the request, never a secret', () => {
    const managed = fromJsonLogLine(
      line({ status: 200, decision: 'allow', cost: '5', provider: 'openai', credential_source: 'operator', operator_credential_id: 'opc_1' }),
      rule,
    );
    expect(managed).toMatchObject({ record: { cost: 5, provider: 'openai', credentialSource: 'operator', operatorCredentialId: 'opc_1', billable: true } });
    // Envoy may write a number-valued field as a JSON number.
    expect(fromJsonLogLine(line({ status: 200, cost: 7 }), rule)).toMatchObject({ record: { cost: 7 } });
    // An operator credential id only belongs to the operator source.
    expect(fromJsonLogLine(line({ status: 200, provider: 'daily', credential_source: 'user', operator_credential_id: 'opc_1' }), rule)).toMatchObject({
      record: { provider: 'daily', credentialSource: 'user', operatorCredentialId: null },
    });
    // What ROUTE_COSTS cannot have published is billed as one unit, never as nothing or a fortune.
    for (const cost of ['0', '-3', '2.5', 'lots', '99999999', 0, 1.5, '-'])
      expect(fromJsonLogLine(line({ status: 200, cost }), rule)).toMatchObject({ record: { cost: 1 } });
    expect(fromJsonLogLine(line({ status: 200, credential_source: 'borrowed' }), rule)).toMatchObject({ record: { credentialSource: null } });
  });

  it('records the gateway’s refusals without an identity as unattributed, never billed, on both log paths', () => {
    const refused = { request_id: 'r-anon', status: 401, decision: 'deny', error_code: 'invalid_api_key', user_id: '-', key_id: null, credential: '-' };
    const expected = {
      keyId: '',
      userId: null,
      credential: 'none',
      stripeCustomerId: null,
      decision: 'deny',
      errorCode: 'invalid_api_key',
      billable: false,
      cost: 1,
      status: 401,
    };
    expect(fromJsonLogLine(JSON.stringify(refused), rule)).toMatchObject({ record: { ...expected, source: 'file' } });
    expect(fromAlsEntry(decodedAls({ requestId: 'r-anon', status: 401, identity: { decision: 'deny', error_code: 'invalid_api_key' } }), rule)).toMatchObject({
      record: { ...expected, source: 'als' },
    });
    // A client's own x-user-id never reaches the log (Envoy strips it), but an allowed request
    // without an identity is still no one's usage: only the gateway's refusals are recorded so.
    expect(fromJsonLogLine(JSON.stringify({ ...refused, decision: 'allow' }), rule)).toEqual({ skip: 'no_identity' });
    expect(fromAlsEntry(decodedAls({ status: 200, identity: null }), rule)).toEqual({ skip: 'no_identity' });
    // A 429 for too many failed attempts from one address has no key either.
    expect(fromJsonLogLine(JSON.stringify({ ...refused, status: 429, error_code: 'too_many_failed_attempts' }), rule)).toMatchObject({
      record: { credential: 'none', status: 429, billable: false },
    });
  });

  it('skips lines without an identity or request id, and garbage', () => {
    expect(fromJsonLogLine('{"request_id":"r","user_id":"u"}', rule)).toEqual({ skip: 'no_identity' });
    expect(fromJsonLogLine('{"key_id":"k","user_id":"u"}', rule)).toEqual({ skip: 'no_request_id' });
    expect(fromJsonLogLine('[1]', rule)).toEqual({ skip: 'malformed' });
    expect(fromJsonLogLine('{oops', rule)).toEqual({ skip: 'malformed' });
  });

  it('are formatted by envoy.yaml with exactly the fields of the Check’s metadata (the gRPC stream carries them all)', () => {
    const yaml = readFileSync(ENVOY_CONFIG_PATH, 'utf8');
    const logged = [...yaml.matchAll(/^\s*(\w+): "%DYNAMIC_METADATA\(([^:)]+):(\w+)\)%"$/gm)].map(([, key, namespace, field]) => ({ key, namespace, field }));
    // Each JSON key is the metadata field it logs, read from ext_authz's namespace…
    for (const entry of logged) expect(entry).toEqual({ key: entry.field, namespace: EXT_AUTHZ_METADATA_NAMESPACE, field: entry.field });
    // …and the file log names every field authz-service publishes, and no other.
    expect(logged.map((e) => e.field).sort()).toEqual(Object.values(CHECK_METADATA).sort());
  });

  it('strips query strings and fragments', () => {
    expect(stripQuery('/x?y#z')).toBe('/x');
    expect(stripQuery('?only')).toBe('/');
  });
});

describe('meter routing (docs/billing.md, "Cost allocation and managed usage")', () => {
  const managedEvents = new Map([['openai', 'managed_openai']]);
  const all = { defaultEvent: 'api_requests', managedEvents, billed: 'all' as const };
  const managedOnly = { ...all, billed: 'managed' as const };
  const rows = [
    { provider: 'openai', credentialSource: 'operator' as const },
    { provider: 'daily', credentialSource: 'operator' as const },
    { provider: 'openai', credentialSource: 'user' as const },
    { provider: 'openai', credentialSource: 'byok' as const },
    { provider: null, credentialSource: null },
  ];
  it('bills managed usage on its provider’s meter only, the rest on the default meter', () => {
    expect(rows.map((r) => meterEventFor(all, r))).toEqual(['managed_openai', 'api_requests', 'api_requests', 'api_requests', 'api_requests']);
  });
  it('with STRIPE_BILLED_USAGE=managed sends only managed usage to Stripe', () => {
    expect(rows.map((r) => meterEventFor(managedOnly, r))).toEqual(['managed_openai', 'api_requests', null, null, null]);
  });
  it('reads STRIPE_MANAGED_METER_EVENTS case-insensitively, as authz-service names providers', () => {
    const c = loadBillingConfig({
      DATABASE_URL: 'postgres://x@127.0.0.1/db',
      STRIPE_MANAGED_METER_EVENTS: '{"OpenAI":"managed_openai","daily":"managed_daily"}',
    });
    expect([...c.STRIPE_MANAGED_METER_EVENTS]).toEqual([
      ['openai', 'managed_openai'],
      ['daily', 'managed_daily'],
    ]);
    expect(loadBillingConfig({ DATABASE_URL: 'postgres://x@127.0.0.1/db' }).STRIPE_MANAGED_METER_EVENTS.size).toBe(0);
  });
});

describe('Stripe outcomes', () => {
  it('retries 429 (after Retry-After), 5xx and network errors; duplicates count as sent; other 4xx park', () => {
    expect(classifyStripeError({ type: 'StripeRateLimitError', statusCode: 429, message: 'slow', headers: { 'retry-after': '3' } })).toEqual({
      kind: 'retry',
      reason: 'rate_limited',
      status: 429,
      message: 'slow',
      retryAfterMs: 3000,
    });
    expect(classifyStripeError({ type: 'StripeAPIError', statusCode: 503, message: 'x' })).toMatchObject({ kind: 'retry', reason: 'server_error' });
    expect(classifyStripeError({ type: 'StripeConnectionError', message: 'timeout' })).toMatchObject({ kind: 'retry', reason: 'network_error' });
    expect(classifyStripeError({ statusCode: 400, message: 'An event already exists with identifier tg_1.' })).toEqual({ kind: 'duplicate' });
    expect(classifyStripeError({ statusCode: 400, message: 'No such customer' })).toEqual({ kind: 'park', status: 400, message: 'No such customer' });
  });

  it('reads Retry-After as seconds or a date', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });

  it('backs off exponentially with jitter, capped', () => {
    expect(backoffMs(1, 1000, 60_000, () => 0)).toBe(500);
    expect(backoffMs(1, 1000, 60_000, () => 1)).toBe(1000);
    expect(backoffMs(4, 1000, 60_000, () => 1)).toBe(8000);
    expect(backoffMs(30, 1000, 60_000, () => 1)).toBe(60_000);
  });

  it('aggregates into UTC-aligned windows', () => {
    expect(lastClosedWindow(Date.UTC(2030, 0, 1, 0, 1, 30), 60).toISOString()).toBe('2030-01-01T00:00:00.000Z');
  });
});

describe('usage ranges', () => {
  const now = new Date('2030-05-10T12:34:00Z');
  it('defaults to the last 30 days, in whole hours', () => {
    expect(resolveUsageRange({}, now)).toEqual({ from: new Date('2030-04-10T12:00:00Z'), to: new Date('2030-05-10T13:00:00Z') });
  });
  it('accepts ISO times and Unix seconds, and refuses nonsense', () => {
    expect(resolveUsageRange({ from: '1893456000', to: '2030-01-02' }).from.toISOString()).toBe('2030-01-01T00:00:00.000Z');
    expect(() => resolveUsageRange({ from: 'nope' })).toThrow(UsageRangeError);
    expect(() => resolveUsageRange({ from: '2020-01-01', to: '2030-01-01' })).toThrow(/400 days/);
  });
});
