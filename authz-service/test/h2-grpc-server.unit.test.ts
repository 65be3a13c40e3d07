import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { addGrpcHealth, bindGrpcServer, createGrpcServer, createLogger, setGrpcServing, shutdownGrpcServer } from '@tollgate/common';
import { AUTHORIZATION_SERVICE, loadEnvoyProtos, type CheckResponse } from '@tollgate/proto';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Checker } from '../src/check/checker.js';
import { deny, type CheckInput, type Decision } from '../src/check/decision.js';
import { decodeCheckRequest } from '../src/grpc/check-request-decoding.js';
import { encodeCheckResponse } from '../src/grpc/check-response-encoding.js';
import { authorizationHandlers, CHECK_METHOD_PATH, checkMethod, createCheckMetrics } from '../src/grpc/check-server.js';
import { GrpcHealth, HEALTH_CHECK_PATH } from '../src/grpc/h2-grpc-health.js';
import { GrpcStatus, H2GrpcServer, parseGrpcTimeout, percentEncode, type UnaryMethod } from '../src/grpc/h2-grpc-server.js';

// Both servers are driven by grpc-js's client, as the service's integration tests and bench
// drive it; the reference is grpc-js's server with the same handlers, as the service ran before.
const protos = loadEnvoyProtos();
const CheckDef = protos.envoy.service.auth.v3.Authorization.service.Check;
const MAX_MESSAGE = 1024 * 1024;

const allowed: Decision = {
  allow: true,
  upstreamHeaders: { 'x-user-id': 'user_1', 'x-api-key-id': 'key_1' },
  removeHeaders: ['authorization', 'x-api-key'],
  responseHeaders: { 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '59' },
  metadata: { credential: 'api_key', user_id: 'user_ünï', key_id: 'key_1', cost: '1' },
  outcome: 'allowed',
};

const DECISIONS: Record<string, () => Decision> = {
  '/allow': () => allowed,
  '/unauthorized': () => deny(401, 'invalid_api_key', 'unknown key'),
  '/limited': () => deny(429, 'rate_limited', 'slow down', { headers: { 'retry-after': '3' }, metadata: { user_id: 'u1', key_id: 'k1' } }),
  '/unavailable': () => deny(503, 'unavailable', 'try later'),
};

/** A Checker answering by path; `/hold` stays in flight until release(). */
function fakeChecker() {
  const held: (() => void)[] = [];
  const checker = {
    check(input: CheckInput): Promise<Decision> {
      if (input.path === '/hold') return new Promise((resolve) => held.push(() => resolve(allowed)));
      if (input.path === '/throw') return Promise.reject(new Error('boom'));
      return Promise.resolve((DECISIONS[input.path] ?? DECISIONS['/allow']!)());
    },
  } as unknown as Checker;
  return {
    checker,
    held: () => held.length,
    release: () => {
      for (const resolve of held.splice(0)) resolve();
    },
  };
}

interface Running {
  port: number;
  health: { set(status: 'SERVING' | 'NOT_SERVING'): void };
  release(): void;
  held(): number;
  stop(graceMs?: number): Promise<void>;
}

async function startH2(extra: [string, UnaryMethod<unknown, unknown>][] = []): Promise<Running & { server: H2GrpcServer }> {
  const fake = fakeChecker();
  const handlers = authorizationHandlers(fake.checker, createCheckMetrics(new Registry()), createLogger({ service: 'test', level: 'silent' }));
  const health = new GrpcHealth([AUTHORIZATION_SERVICE]);
  const server = new H2GrpcServer(
    new Map<string, UnaryMethod<unknown, unknown>>([[CHECK_METHOD_PATH, checkMethod(handlers)], [HEALTH_CHECK_PATH, health.method], ...extra]),
    { maxReceiveMessageLength: MAX_MESSAGE },
  );
  const port = await server.listen('127.0.0.1', 0);
  return {
    server,
    port,
    health: { set: (s) => health.set([AUTHORIZATION_SERVICE], s) },
    release: fake.release,
    held: fake.held,
    stop: (graceMs = 1000) => server.shutdown(graceMs),
  };
}

/** grpc-js's server set up as authz-service's was before H2GrpcServer. */
async function startGrpcJs(): Promise<Running> {
  const fake = fakeChecker();
  const handlers = authorizationHandlers(fake.checker, createCheckMetrics(new Registry()), createLogger({ service: 'test', level: 'silent' }));
  const server = createGrpcServer({ 'grpc.max_receive_message_length': MAX_MESSAGE });
  const service = protos.envoy.service.auth.v3.Authorization.service;
  const Check = { ...service.Check, requestDeserialize: decodeCheckRequest, responseSerialize: (a: never) => encodeCheckResponse(a) };
  server.addService({ ...service, Check } as unknown as grpc.ServiceDefinition, handlers as never);
  const health = addGrpcHealth(server, [AUTHORIZATION_SERVICE]);
  const bound = await bindGrpcServer(server, '127.0.0.1', 0);
  return {
    port: bound.port,
    health: { set: (s) => setGrpcServing(health, [AUTHORIZATION_SERVICE], s) },
    release: fake.release,
    held: fake.held,
    stop: (graceMs = 1000) => {
      bound.close();
      return shutdownGrpcServer(server, graceMs);
    },
  };
}

interface Outcome {
  code: number;
  details?: string;
  /** The response message's bytes as the client received them. */
  bytes?: Buffer;
}

const identity = (b: Buffer) => b;

/** One unary call with raw bytes both ways, so any path, any bytes and both servers compare. */
function call(client: grpc.Client, path: string, body: Buffer, options: grpc.CallOptions = {}): Promise<Outcome> & { cancel(): void } {
  let handle: grpc.ClientUnaryCall | undefined;
  const done = new Promise<Outcome>((resolve) => {
    handle = client.makeUnaryRequest(path, identity, identity, body, new grpc.Metadata(), options, (err, bytes) =>
      resolve(err ? { code: err.code, details: err.details } : { code: 0, bytes: bytes! }),
    );
  });
  return Object.assign(done, { cancel: () => handle!.cancel() });
}

function checkRequest(path: string, headers: Record<string, string> = { 'x-request-id': 'req-1' }): Buffer {
  return CheckDef.requestSerialize({ attributes: { request: { http: { method: 'GET', path, headers } } } });
}

/** HealthCheckRequest { service } (field 1, a string). */
function healthRequest(service: string): Buffer {
  const s = Buffer.from(service);
  return s.length ? Buffer.concat([Buffer.from([0x0a, s.length]), s]) : Buffer.alloc(0);
}

describe('H2GrpcServer against grpc-js', () => {
  let h2: Running;
  let ref: Running;
  let h2Client: grpc.Client;
  let refClient: grpc.Client;

  beforeAll(async () => {
    h2 = await startH2();
    ref = await startGrpcJs();
    h2Client = new grpc.Client(`127.0.0.1:${h2.port}`, grpc.credentials.createInsecure());
    refClient = new grpc.Client(`127.0.0.1:${ref.port}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    h2Client.close();
    refClient.close();
    await h2.stop();
    await ref.stop();
  });

  it.each(Object.keys(DECISIONS))('answers a Check (%s) with the bytes grpc-js answered', async (path) => {
    const [a, b] = await Promise.all([call(h2Client, CHECK_METHOD_PATH, checkRequest(path)), call(refClient, CHECK_METHOD_PATH, checkRequest(path))]);
    expect(a.code).toBe(0);
    expect(a.bytes!.equals(b.bytes!)).toBe(true);
    // And what protobufjs makes of it, as a client of the real service would.
    const decoded = CheckDef.responseDeserialize(a.bytes!) as CheckResponse;
    expect(decoded).toEqual(CheckDef.responseDeserialize(b.bytes!));
    expect(decoded.status?.code === 0).toBe(path === '/allow');
  });

  it('answers through the generated Authorization client', async () => {
    const client = new protos.envoy.service.auth.v3.Authorization(`127.0.0.1:${h2.port}`, grpc.credentials.createInsecure());
    const res = await new Promise<CheckResponse>((resolve, reject) =>
      client.Check({ attributes: { request: { http: { method: 'GET', path: '/allow', headers: {} } } } }, (err, r) => (err ? reject(err) : resolve(r!))),
    );
    client.close();
    expect(res.okResponse?.headers?.map((h) => h.header?.key)).toEqual(['x-user-id', 'x-api-key-id']);
    expect(res.dynamicMetadata?.fields?.user_id?.stringValue).toBe('user_ünï');
  });

  it.each([
    ['a request without HTTP attributes', Buffer.alloc(0)],
    ['a Checker that fails', checkRequest('/throw')],
    ['bytes that are no CheckRequest', Buffer.from([0x0a, 0x7f, 0x01])],
  ])('fails %s with the status and message grpc-js gave', async (_name, body) => {
    const [a, b] = await Promise.all([call(h2Client, CHECK_METHOD_PATH, body), call(refClient, CHECK_METHOD_PATH, body)]);
    expect(a.code).not.toBe(0);
    expect(a.code).toBe(b.code);
    if (b.code !== GrpcStatus.INTERNAL) expect(a.details).toBe(b.details);
    expect(a.details).not.toBe('');
  });

  it('answers UNIMPLEMENTED for a method it does not serve', async () => {
    for (const path of ['/envoy.service.auth.v3.Authorization/Nope', '/grpc.health.v1.Health/Watch']) {
      const [a, b] = await Promise.all([call(h2Client, path, Buffer.alloc(0)), call(refClient, '/envoy.service.auth.v3.Authorization/Nope', Buffer.alloc(0))]);
      expect(a.code).toBe(GrpcStatus.UNIMPLEMENTED);
      expect(b.code).toBe(GrpcStatus.UNIMPLEMENTED);
      expect(a.details).toContain(path);
    }
  });

  it('refuses a message over the limit with RESOURCE_EXHAUSTED, as grpc-js did', async () => {
    const big = Buffer.alloc(MAX_MESSAGE + 1);
    const [a, b] = await Promise.all([call(h2Client, CHECK_METHOD_PATH, big), call(refClient, CHECK_METHOD_PATH, big)]);
    expect(a.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(b.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    // The connection is still good for the next Check.
    expect((await call(h2Client, CHECK_METHOD_PATH, checkRequest('/allow'))).code).toBe(0);
  });

  it('takes a message of exactly the limit', async () => {
    // A CheckRequest whose one field is skipped: field 15, length-delimited, filling the limit.
    const filler = Buffer.alloc(MAX_MESSAGE - 4);
    const body = Buffer.concat([Buffer.from([0x7a, 0xfc, 0xff, 0x3f]), filler]);
    expect(body.length).toBe(MAX_MESSAGE);
    const a = await call(h2Client, CHECK_METHOD_PATH, body);
    // Decoded, then refused by the handler for lacking method and path: past the size check.
    expect(a.code).toBe(GrpcStatus.INVALID_ARGUMENT);
  });

  it('refuses a compressed message with UNIMPLEMENTED', async () => {
    const gzip = new grpc.Client(`127.0.0.1:${h2.port}`, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 });
    const a = await call(gzip, CHECK_METHOD_PATH, checkRequest('/allow'));
    gzip.close();
    expect(a.code).toBe(GrpcStatus.UNIMPLEMENTED);
    expect(a.details).toMatch(/compressed/);
  });

  it('answers the health Check as grpc-health-check did, and follows the serving status', async () => {
    for (const service of ['', AUTHORIZATION_SERVICE, 'no.such.Service']) {
      const [a, b] = await Promise.all([call(h2Client, HEALTH_CHECK_PATH, healthRequest(service)), call(refClient, HEALTH_CHECK_PATH, healthRequest(service))]);
      expect(a.code).toBe(b.code);
      if (b.code === 0) expect(a.bytes!.equals(b.bytes!)).toBe(true);
      else expect(a.details).toContain(service);
    }
    expect((await call(h2Client, HEALTH_CHECK_PATH, healthRequest('no.such.Service'))).code).toBe(GrpcStatus.NOT_FOUND);
    h2.health.set('NOT_SERVING');
    ref.health.set('NOT_SERVING');
    const [a, b] = await Promise.all([
      call(h2Client, HEALTH_CHECK_PATH, healthRequest(AUTHORIZATION_SERVICE)),
      call(refClient, HEALTH_CHECK_PATH, healthRequest(AUTHORIZATION_SERVICE)),
    ]);
    expect(a.bytes!.equals(b.bytes!)).toBe(true);
    expect([...a.bytes!]).toEqual([0x08, 2]); // NOT_SERVING
    h2.health.set('SERVING');
    ref.health.set('SERVING');
  });
});

describe('H2GrpcServer call lifecycle', () => {
  let h2: Running & { server: H2GrpcServer };
  let client: grpc.Client;
  let lastCall: { cancelled: boolean } | undefined;
  let answerLater: ((err: null, res: string) => void) | undefined;

  const echoError: UnaryMethod<string, string> = {
    decode: (b) => b.toString(),
    encode: (s, headroom) => Buffer.concat([Buffer.alloc(headroom), Buffer.from(s)]),
    handle: (call, callback) => callback({ code: GrpcStatus.INVALID_ARGUMENT, details: call.request }),
  };
  const held: UnaryMethod<string, string> = {
    decode: (b) => b.toString(),
    encode: (s, headroom) => Buffer.concat([Buffer.alloc(headroom), Buffer.from(s)]),
    handle: (call, callback) => {
      lastCall = call;
      answerLater = callback;
    },
  };

  beforeAll(async () => {
    h2 = await startH2([
      ['/test.Echo/Error', echoError as UnaryMethod<unknown, unknown>],
      ['/test.Held/Call', held as UnaryMethod<unknown, unknown>],
    ]);
    client = new grpc.Client(`127.0.0.1:${h2.port}`, grpc.credentials.createInsecure());
  });
  afterEach(() => {
    lastCall = undefined;
    answerLater = undefined;
  });
  afterAll(async () => {
    client.close();
    await h2.stop();
  });

  it('percent-encodes grpc-message, which the client decodes back', async () => {
    const details = 'bad ünïcödé 😀 100% \r\n done';
    const a = await call(client, '/test.Echo/Error', Buffer.from(details));
    expect(a.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(a.details).toBe(details);
    expect(percentEncode('50% ü')).toBe('50%25 %C3%BC');
    expect(percentEncode('plain message')).toBe('plain message');
  });

  it('parses grpc-timeout in every unit', () => {
    expect(parseGrpcTimeout('250m')).toBe(250);
    expect(parseGrpcTimeout('2S')).toBe(2000);
    expect(parseGrpcTimeout('1M')).toBe(60_000);
    expect(parseGrpcTimeout('1H')).toBe(3_600_000);
    expect(parseGrpcTimeout('5000u')).toBe(5);
    expect(parseGrpcTimeout('7000000n')).toBe(7);
    expect(parseGrpcTimeout('123456789m')).toBeUndefined(); // more than 8 digits
    expect(parseGrpcTimeout('10x')).toBeUndefined();
    expect(parseGrpcTimeout(undefined)).toBeUndefined();
  });

  it('answers DEADLINE_EXCEEDED itself when grpc-timeout passes, and drops the late answer', async () => {
    // A raw HTTP/2 client: grpc-js would give up on its own deadline, hiding the server's.
    const session = http2.connect(`http://127.0.0.1:${h2.port}`);
    const stream = session.request({
      ':method': 'POST',
      ':path': '/test.Held/Call',
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': '20m',
    });
    const frame = Buffer.from([0, 0, 0, 0, 2, 0x68, 0x69]);
    stream.end(frame);
    const status = await new Promise<{ headers: http2.IncomingHttpHeaders }>((resolve) => stream.on('response', (headers) => resolve({ headers })));
    stream.resume();
    await new Promise((resolve) => stream.on('close', resolve));
    session.close();
    expect(status.headers['grpc-status']).toBe(String(GrpcStatus.DEADLINE_EXCEEDED));
    expect(lastCall?.cancelled).toBe(true);
    answerLater!(null, 'too late'); // must neither throw nor write to the closed stream
    expect((await call(client, '/test.Echo/Error', Buffer.from('still serving'))).details).toBe('still serving');
  });

  it('lets a call the client cancelled finish without answering it', async () => {
    const pending = call(client, '/test.Held/Call', Buffer.from('x'));
    await waitUntil(() => lastCall !== undefined);
    pending.cancel();
    expect((await pending).code).toBe(GrpcStatus.CANCELLED);
    await waitUntil(() => lastCall!.cancelled);
    answerLater!(null, 'nobody listens');
    expect((await call(client, '/test.Echo/Error', Buffer.from('next'))).details).toBe('next');
  });

  it('answers 415 to a request that is not gRPC, and 405 to one that is not a POST', async () => {
    const session = http2.connect(`http://127.0.0.1:${h2.port}`);
    const statusOf = (headers: http2.OutgoingHttpHeaders) =>
      new Promise<unknown>((resolve) => {
        const s = session.request(headers);
        s.on('response', (h) => resolve(h[':status']));
        s.resume();
        s.end();
      });
    expect(await statusOf({ ':method': 'POST', ':path': CHECK_METHOD_PATH, 'content-type': 'application/json' })).toBe(415);
    expect(await statusOf({ ':method': 'GET', ':path': CHECK_METHOD_PATH, 'content-type': 'application/grpc' })).toBe(405);
    session.close();
  });

  it.each([
    ['no message at all', Buffer.alloc(0), /no request message/],
    ['a message cut short', Buffer.from([0, 0, 0, 0, 9, 1, 2]), /cut short/],
    ['two messages', Buffer.from([0, 0, 0, 0, 1, 0x41, 0, 0, 0, 0, 1, 0x42]), /more than one/],
  ])('answers INTERNAL with a message to %s', async (_name, body, message) => {
    const session = http2.connect(`http://127.0.0.1:${h2.port}`);
    const stream = session.request({ ':method': 'POST', ':path': '/test.Echo/Error', 'content-type': 'application/grpc' });
    stream.end(body);
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => stream.on('response', resolve));
    stream.resume();
    session.close();
    expect(headers['grpc-status']).toBe(String(GrpcStatus.INTERNAL));
    expect(decodeURIComponent(String(headers['grpc-message']))).toMatch(message);
  });
});

describe('H2GrpcServer shutdown', () => {
  it('lets a Check in flight finish, then stops taking calls', async () => {
    const h2 = await startH2();
    const client = new grpc.Client(`127.0.0.1:${h2.port}`, grpc.credentials.createInsecure());
    const inFlight = call(client, CHECK_METHOD_PATH, checkRequest('/hold'));
    await waitUntil(() => h2.held() === 1);
    let stopped = false;
    const stopping = h2.stop(60_000).then(() => (stopped = true));
    // The server waits for the held Check (a macrotask turn shows it has not resolved).
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    h2.release();
    const answer = await inFlight;
    expect(answer.code).toBe(0);
    expect((CheckDef.responseDeserialize(answer.bytes!) as CheckResponse).status?.code).toBe(0);
    await stopping;
    const after = await call(client, CHECK_METHOD_PATH, checkRequest('/allow'), { deadline: Date.now() + 5000 });
    expect(after.code).toBe(GrpcStatus.UNAVAILABLE);
    client.close();
  });

  it('drops calls still open when the grace ends', async () => {
    const h2 = await startH2();
    const client = new grpc.Client(`127.0.0.1:${h2.port}`, grpc.credentials.createInsecure());
    const inFlight = call(client, CHECK_METHOD_PATH, checkRequest('/hold'));
    await waitUntil(() => h2.held() === 1);
    await h2.stop(10);
    expect((await inFlight).code).not.toBe(0);
    h2.release(); // the Checker answers after all: nothing to write to
    client.close();
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}
