import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECK_METADATA } from '@tollgate/common';
import { loadEnvoyProtos, type CheckResponse } from '@tollgate/proto';
import { startNoopAuthz, type RunningNoopAuthz } from '../src/noop-authz.js';
import { findBenchTool } from '../src/tools.js';

// The no-op setup is the limit Tollgate is measured against only if Envoy and billing-sidecar do
// their whole job behind it: every Check allowed, with the identity headers authz-service sets
// and the metadata billing attributes usage by.
describe('the no-op ext_authz server', () => {
  let noop: RunningNoopAuthz;
  let client: InstanceType<ReturnType<typeof loadEnvoyProtos>['envoy']['service']['auth']['v3']['Authorization']>;
  const check = (headers: Record<string, string>) =>
    new Promise<CheckResponse>((resolve, reject) =>
      client.Check({ attributes: { request: { http: { method: 'GET', path: '/hello', headers } } } }, (err, res) => (err ? reject(err) : resolve(res!))),
    );

  beforeAll(async () => {
    // ./scripts/test (or pnpm bench:gateway) builds it; without it this fails, saying so.
    if (!findBenchTool('noop-authz'))
      throw new Error('noop-authz is not built: ./scripts/test (or pnpm bench:gateway) builds bench/noop-authz into .tools/bin');
    noop = await startNoopAuthz({ userId: 'user_noop', keyId: 'key_noop', limits: { perMinute: 600, perDay: 10_000 } });
    const protos = loadEnvoyProtos();
    client = new protos.envoy.service.auth.v3.Authorization(`${noop.endpoint.host}:${noop.endpoint.port}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client?.close();
    await noop?.process.stop();
  });

  it('allows a Check at once, with the identity upstream and the credential removed', async () => {
    const res = await check({ authorization: 'Bearer sk_anything' });
    expect(res.status?.code).toBe(0);
    const ok = res.okResponse!;
    const upstream = Object.fromEntries(ok.headers.map((h) => [h.header!.key, h.header!.value]));
    expect(upstream).toEqual({ 'x-user-id': 'user_noop', 'x-api-key-id': 'key_noop', 'x-api-key-scopes': '*' });
    expect(ok.headers.every((h) => h.appendAction === 'OVERWRITE_IF_EXISTS_OR_ADD')).toBe(true);
    expect(ok.headersToRemove).toEqual(expect.arrayContaining(['authorization', 'x-api-key']));
    const toClient = Object.fromEntries(ok.responseHeadersToAdd.map((h) => [h.header!.key, h.header!.value]));
    expect(toClient).toMatchObject({
      'x-ratelimit-limit': '600',
      'x-ratelimit-remaining': '599',
      'ratelimit-policy': '"minute";q=600;w=60, "day";q=10000;w=86400',
    });
  });

  it('publishes the metadata fields authz-service does, so billing records the request', async () => {
    const res = await check({});
    const fields = Object.fromEntries(Object.entries(res.dynamicMetadata!.fields).map(([k, v]) => [k, v.stringValue]));
    expect(fields).toEqual({
      [CHECK_METADATA.credential]: 'api_key',
      [CHECK_METADATA.userId]: 'user_noop',
      [CHECK_METADATA.keyId]: 'key_noop',
      [CHECK_METADATA.decision]: 'allow',
      [CHECK_METADATA.cost]: '1',
    });
  });
});
