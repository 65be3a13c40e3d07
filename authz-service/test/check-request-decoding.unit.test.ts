import { describe, expect, it } from 'vitest';
import { loadEnvoyProtos, type CheckRequest, type CheckRequest__Input } from '@tollgate/proto';
import { decodeCheckRequest } from '../src/grpc/check-request-decoding.js';

// protobufjs, as grpc-js would use it without the hand-written decoder.
const Check = loadEnvoyProtos().envoy.service.auth.v3.Authorization.service.Check;
const encode = (r: CheckRequest__Input) => Buffer.from(Check.requestSerialize(r as never));

/** The fields the Check reads, from protobufjs's decoding. */
function protobufjsFields(buf: Buffer) {
  const a = (Check.requestDeserialize(buf) as CheckRequest).attributes;
  const http = a?.request?.http;
  const sourceAddress = a?.source?.address?.socketAddress?.address;
  return { method: http?.method ?? '', path: http?.path ?? '', headers: http?.headers ?? {}, ...(sourceAddress !== undefined && { sourceAddress }) };
}

const long = 'x'.repeat(300) + 'é'.repeat(100);

/** A request with every field Envoy's ext_authz can fill in, so the decoder skips them all. */
const everything: CheckRequest__Input = {
  attributes: {
    source: {
      address: { socketAddress: { address: '203.0.113.7', portValue: 51234 } },
      service: 'client',
      labels: { a: 'b' },
      principal: 'spiffe://client',
      certificate: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    },
    destination: { address: { socketAddress: { address: '10.0.0.1', portValue: 8080 } }, principal: 'gw' },
    request: {
      time: { seconds: '1764680000', nanos: 123456789 },
      http: {
        id: '12345678901234567890',
        method: 'POST',
        headers: {
          ':authority': 'api.example',
          ':path': '/v1/things?x=1',
          ':method': 'POST',
          authorization: 'Bearer tg_live_abc',
          'x-api-key': '',
          'x-provider': 'openai',
          'x-provider-auth': 'sk-ünï😀',
          'x-request-id': 'c0ffee',
          'x-long': long,
        },
        path: '/v1/things?x=1',
        host: 'api.example',
        scheme: 'https',
        query: 'x=1',
        fragment: 'frag',
        size: '-1',
        protocol: 'HTTP/2',
        body: '{"a":1}',
        rawBody: Buffer.from([0, 1, 2, 255]),
        headerMap: { headers: [{ key: 'a', value: 'b', rawValue: Buffer.from('c') }] },
      },
    },
    contextExtensions: { route: 'default' },
    metadataContext: { filterMetadata: { 'envoy.x': { fields: { n: { numberValue: 1.5 }, s: { stringValue: 'v' }, b: { boolValue: true } } } } },
    routeMetadataContext: { filterMetadata: { r: { fields: { l: { listValue: { values: [{ nullValue: 'NULL_VALUE' }] } } } } } },
    tlsSession: { sni: 'api.example' },
  },
};

const CASES: [string, CheckRequest__Input][] = [
  ['every field Envoy can send', everything],
  ['the minimum', { attributes: { request: { http: { method: 'GET', path: '/' } } } }],
  ['no headers', { attributes: { request: { http: { method: 'GET', path: '/x', headers: {} } } } }],
  ['no http', { attributes: { request: { time: { seconds: '1' } } } }],
  ['no attributes', {}],
  ['a source without a socket address', { attributes: { source: { address: { pipe: { path: '/tmp/s' } } }, request: { http: { method: 'GET', path: '/' } } } }],
  ['a socket address without an address', { attributes: { source: { address: { socketAddress: { portValue: 1 } } } } }],
  [
    'an IPv6 source',
    { attributes: { source: { address: { socketAddress: { address: '2001:db8::1' } } }, request: { http: { method: 'DELETE', path: '/k' } } } },
  ],
  ['empty strings', { attributes: { request: { http: { method: '', path: '', headers: { '': '', a: '' } } } } }],
];

describe('decodeCheckRequest', () => {
  it.each(CASES)('%s: reads what protobufjs reads', (_name, request) => {
    const buf = encode(request);
    expect(decodeCheckRequest(buf)).toEqual(protobufjsFields(buf));
  });

  it('reads the values Envoy sent', () => {
    expect(decodeCheckRequest(encode(everything))).toEqual({
      method: 'POST',
      path: '/v1/things?x=1',
      headers: everything.attributes!.request!.http!.headers,
      sourceAddress: '203.0.113.7',
    });
  });

  it('lets a later copy of a field replace an earlier one, as protobufjs does', () => {
    const pairs: [CheckRequest__Input, CheckRequest__Input][] = [
      [everything, { attributes: { request: { http: { method: 'GET', path: '/other', headers: { b: '2' } } } } }],
      [everything, { attributes: { request: { time: { seconds: '2' } } } }],
      [everything, { attributes: { source: { principal: 'p' } } }],
      [{ attributes: { request: { http: { method: 'GET', path: '/' } } } }, everything],
    ];
    for (const [first, second] of pairs) {
      // Concatenated messages are one message with each field twice (protobuf's merge on the wire).
      const buf = Buffer.concat([encode(first), encode(second)]);
      expect(decodeCheckRequest(buf)).toEqual(protobufjsFields(buf));
    }
  });

  it('keeps the last of two header entries with the same name', () => {
    // Length-delimited fields by hand: protobufjs never writes a map key twice, Envoy could.
    const ld = (tag: number, ...parts: Buffer[]) => {
      const body = Buffer.concat(parts);
      return Buffer.concat([Buffer.from([tag, body.length]), body]);
    };
    const str = (tag: number, s: string) => ld(tag, Buffer.from(s));
    const entry = (k: string, v: string) => ld(0x1a, str(0x0a, k), str(0x12, v));
    const http = ld(0x12, str(0x12, 'GET'), entry('a', '1'), str(0x22, '/'), entry('a', '2'), entry('b', '3'));
    const buf = ld(0x0a, ld(0x22, http));
    expect(decodeCheckRequest(buf)).toEqual(protobufjsFields(buf));
    expect(decodeCheckRequest(buf).headers).toEqual({ a: '2', b: '3' });
  });

  it('refuses truncated input', () => {
    const buf = encode(everything);
    for (const cut of [1, 2, 10, buf.length - 1]) expect(() => decodeCheckRequest(buf.subarray(0, cut))).toThrow(RangeError);
  });
});
