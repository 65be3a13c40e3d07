import http2, { type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';

/**
 * A gRPC server for unary methods only, on node:http2 directly. authz-service serves two
 * methods (the ext_authz Check Envoy sends on every request, and the health Check), and
 * grpc-js's general-purpose server — its call objects, metadata, interceptors, per-call
 * streams — was most of a Check's CPU and allocation besides Node's HTTP/2 itself
 * (docs/benchmarks.md, "Check"). This does the protocol's unary subset: the 5-byte message
 * prefix, identity encoding only, grpc-timeout, the status in trailers, GOAWAY on shutdown.
 */

/** The gRPC status codes this server and its methods answer with. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

interface GrpcError {
  code: number;
  details?: string;
}

export interface UnaryCall<Req> {
  request: Req;
  /** True once the client is gone (RST_STREAM, connection lost) or the deadline passed. */
  readonly cancelled: boolean;
}

export type UnaryCallback<Res> = (err: GrpcError | null, response?: Res) => void;

export interface UnaryMethod<Req, Res> {
  /** The request message's bytes (no prefix) to a request; throws on malformed bytes. */
  decode(bytes: Buffer): Req;
  /** The response's bytes, with `headroom` unwritten bytes in front for the message prefix. */
  encode(response: Res, headroom: number): Buffer;
  handle(call: UnaryCall<Req>, callback: UnaryCallback<Res>): void;
}

export interface H2GrpcServerOptions {
  /** Larger request messages are refused with RESOURCE_EXHAUSTED (grpc-js's default: 4 MiB). */
  maxReceiveMessageLength?: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS: Envoy opens another connection past it. */
  maxConcurrentStreams?: number;
  /** A PING on every connection this often, to find peers that vanished without a FIN. */
  keepaliveIntervalMs?: number;
  /** How long a PING may go unanswered before the connection is dropped. */
  keepaliveTimeoutMs?: number;
}

const PREFIX = 5;
const OK_HEADERS = { ':status': 200, 'content-type': 'application/grpc' };
const OK_TRAILERS = { 'grpc-status': '0' };
const ignore = () => {};

// A 'wantTrailers' listener shared by every stream (no closure per call).
function sendOkTrailers(this: ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

/** grpc-message is percent-encoded: bytes outside printable ASCII, and '%' itself. */
export function percentEncode(message: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let out = '';
  for (const b of Buffer.from(message, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** grpc-timeout ("250m", "1S", at most 8 digits) in ms; undefined when absent or malformed. */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  return m ? Number(m[1]) * TIMEOUT_UNIT_MS[m[2]!]! : undefined;
}

function isGrpcContentType(value: string | undefined): boolean {
  return value === 'application/grpc' || (value !== undefined && (value.startsWith('application/grpc+') || value.startsWith('application/grpc;')));
}

/** A trailers-only response: the status in the one HEADERS frame, as gRPC allows when there is no message. */
function sendStatus(stream: ServerHttp2Stream, code: number, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  try {
    stream.respond({ ...OK_HEADERS, 'grpc-status': String(code), 'grpc-message': percentEncode(message) }, { endStream: true });
  } catch {
    // The stream closed in between (a reset from the client): nothing to answer.
  }
}

/**
 * A class, not an object literal with a getter: with the literal, nearly everything a call
 * touches (the stream, the request, the response) survived scavenges into the old generation,
 * ~2.3 MB per scavenge against ~0.5 with this class (`--trace-gc`, 20,000 calls at 32 in flight),
 * and the server cost more CPU per call than grpc-js instead of a quarter less.
 */
class Call<Req> implements UnaryCall<Req> {
  constructor(
    readonly request: Req,
    private readonly isCancelled: () => boolean,
  ) {}

  get cancelled(): boolean {
    return this.isCancelled();
  }
}

export class H2GrpcServer {
  private readonly server: http2.Http2Server;
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly maxMessage: number;
  private closing = false;

  constructor(
    private readonly methods: ReadonlyMap<string, UnaryMethod<unknown, unknown>>,
    private readonly options: H2GrpcServerOptions = {},
  ) {
    this.maxMessage = options.maxReceiveMessageLength ?? 4 * 1024 * 1024;
    this.server = http2.createServer({
      settings: { maxConcurrentStreams: options.maxConcurrentStreams ?? 1000 },
      // Room for many concurrent Checks' frames before nghttp2 refuses new streams.
      maxSessionMemory: 32,
    });
    this.server.on('connection', (socket: Socket) => {
      // Nagle off: a small response written while an earlier one is unacknowledged would wait
      // for the peer's delayed ACK, ~40 ms (docs/benchmarks.md, "Nagle on the service's gRPC sockets").
      socket.setNoDelay(true);
      socket.setKeepAlive(true);
    });
    this.server.on('session', (session) => this.track(session));
    this.server.on('stream', (stream, headers) => this.serve(stream, headers));
  }

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  /**
   * Stops accepting connections, sends GOAWAY on every open one so no new calls start there,
   * lets the calls in flight finish, and drops whatever is still open after `graceMs`.
   */
  shutdown(graceMs: number): Promise<void> {
    this.closing = true;
    return new Promise((resolve) => {
      const force = setTimeout(() => {
        for (const session of this.sessions) session.destroy();
        resolve();
      }, graceMs);
      this.server.close(() => {
        clearTimeout(force);
        resolve();
      });
      for (const session of this.sessions) session.close();
    });
  }

  private track(session: ServerHttp2Session): void {
    this.sessions.add(session);
    session.on('error', ignore);
    const interval = this.options.keepaliveIntervalMs;
    const keepalive =
      interval && interval > 0
        ? setInterval(() => {
            const timeout = setTimeout(() => session.destroy(), this.options.keepaliveTimeoutMs ?? 20_000);
            timeout.unref();
            if (!session.ping(() => clearTimeout(timeout))) clearTimeout(timeout);
          }, interval).unref()
        : undefined;
    session.once('close', () => {
      clearInterval(keepalive);
      this.sessions.delete(session);
    });
    if (this.closing) session.close();
  }

  private serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', ignore);
    if (headers[':method'] !== 'POST') {
      stream.respond({ ':status': 405 }, { endStream: true });
      stream.resume();
      return;
    }
    if (!isGrpcContentType(headers['content-type'])) {
      stream.respond(
        { ':status': 415, 'grpc-status': String(GrpcStatus.INTERNAL), 'grpc-message': 'content-type must be application/grpc' },
        { endStream: true },
      );
      stream.resume();
      return;
    }
    const path = headers[':path'] ?? '';
    const method = this.methods.get(path);
    if (!method) {
      sendStatus(stream, GrpcStatus.UNIMPLEMENTED, `unknown method ${path}`);
      stream.resume();
      return;
    }

    let answered = false;
    let deadline: NodeJS.Timeout | undefined;
    const finish = (code: number, message: string) => {
      if (answered) return;
      answered = true;
      clearTimeout(deadline);
      sendStatus(stream, code, message);
    };
    // Envoy sends one with every Check (the ext_authz timeout) and resets the stream itself when
    // it passes; the timer answers other clients. It is cleared with the answer; a call the
    // client reset leaves it to fire into a closed stream, harmlessly, rather than pay for a
    // 'close' listener on every Check.
    const timeoutMs = parseGrpcTimeout(headers['grpc-timeout']);
    if (timeoutMs !== undefined) deadline = setTimeout(() => finish(GrpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded'), timeoutMs);

    let first: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    let received = 0;
    const maxMessage = this.maxMessage;
    stream.on('data', (chunk: Buffer) => {
      if (answered) return; // refused already: drain what is still arriving
      received += chunk.length;
      if (first === undefined) first = chunk;
      else (chunks ??= [first]).push(chunk);
      if (received - chunk.length < PREFIX && received >= PREFIX) {
        const head = chunks ? Buffer.concat(chunks, received) : first;
        if (head[0] !== 0) {
          finish(GrpcStatus.UNIMPLEMENTED, `compressed messages are not supported (grpc-encoding: ${String(headers['grpc-encoding'] ?? 'none')})`);
        } else if (head.readUInt32BE(1) > maxMessage) {
          finish(GrpcStatus.RESOURCE_EXHAUSTED, `request message larger than max (${head.readUInt32BE(1)} vs. ${maxMessage})`);
        }
      }
      if (received > PREFIX + maxMessage) finish(GrpcStatus.RESOURCE_EXHAUSTED, `request larger than max (${maxMessage} bytes)`);
    });
    stream.once('end', () => {
      if (answered) return;
      if (received < PREFIX) return finish(GrpcStatus.INTERNAL, 'the call carried no request message');
      const bytes = chunks ? Buffer.concat(chunks, received) : first!;
      const length = bytes.readUInt32BE(1);
      if (received < PREFIX + length) return finish(GrpcStatus.INTERNAL, 'the request message was cut short');
      if (received > PREFIX + length) return finish(GrpcStatus.INTERNAL, 'more than one request message for a unary method');
      let request: unknown;
      try {
        request = method.decode(bytes.subarray(PREFIX));
      } catch (err) {
        return finish(GrpcStatus.INTERNAL, `could not parse the request message: ${(err as Error).message}`);
      }
      const call = new Call(request, () => answered || stream.destroyed);
      const callback: UnaryCallback<unknown> = (err, response) => {
        if (answered) return;
        if (err) return finish(err.code, err.details ?? '');
        if (stream.destroyed) {
          answered = true;
          clearTimeout(deadline);
          return;
        }
        let body: Buffer;
        try {
          body = method.encode(response, PREFIX);
        } catch (e) {
          return finish(GrpcStatus.INTERNAL, `could not serialize the response: ${(e as Error).message}`);
        }
        answered = true;
        clearTimeout(deadline);
        body[0] = 0;
        body.writeUInt32BE(body.length - PREFIX, 1);
        try {
          stream.respond(OK_HEADERS, { waitForTrailers: true });
        } catch {
          return; // reset by the client in between
        }
        stream.once('wantTrailers', sendOkTrailers);
        stream.end(body);
      };
      try {
        method.handle(call, callback);
      } catch (err) {
        finish(GrpcStatus.INTERNAL, `the method failed: ${(err as Error).message}`);
      }
    });
  }
}
