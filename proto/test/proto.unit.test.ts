import { describe, expect, it } from 'vitest';
import { loadEnvoyProtos } from '../src/index.js';

describe('loadEnvoyProtos', () => {
  it('loads the ext_authz and access-log services from the protos in @grpc/grpc-js-xds', () => {
    const protos = loadEnvoyProtos();
    const auth = protos.envoy.service.auth.v3.Authorization.service;
    const als = protos.envoy.service.accesslog.v3.AccessLogService.service;
    expect(auth.Check.path).toBe('/envoy.service.auth.v3.Authorization/Check');
    expect(als.StreamAccessLogs.path).toBe('/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs');
    expect(als.StreamAccessLogs.requestStream).toBe(true);
  });

  it('round-trips a CheckRequest through the wire format', () => {
    const protos = loadEnvoyProtos();
    const check = protos.envoy.service.auth.v3.Authorization.service.Check;
    const bytes = check.requestSerialize({
      attributes: { request: { http: { method: 'GET', path: '/hello', headers: { authorization: 'Bearer x' } } } },
    });
    const back = check.requestDeserialize(bytes);
    expect(back.attributes?.request?.http?.path).toBe('/hello');
    expect(back.attributes?.request?.http?.headers).toEqual({ authorization: 'Bearer x' });
  });
});
