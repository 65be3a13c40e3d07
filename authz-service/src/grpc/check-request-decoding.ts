import { eachField, LEN, readLength, readString, type Reader } from './protobuf-wire.js';

/**
 * What a Check reads from a CheckRequest, and nothing more. protobufjs decoded the whole request
 * (times, peers, TLS, metadata) into messages and then plain objects with every default filled
 * in, ~4.7 KB per Check (docs/benchmarks.md, "Check"); this walks the wire bytes and keeps four
 * fields. check-request-decoding.unit.test.ts compares it with protobufjs's decoder on requests
 * with every field Envoy can set. Like protobufjs, a later copy of a message field replaces an
 * earlier one, a later scalar wins, and header map entries with the same key keep the last.
 */
export interface CheckRequestFields {
  /** attributes.request.http.method; '' when absent. */
  method: string;
  /** attributes.request.http.path; '' when absent. */
  path: string;
  /** attributes.request.http.headers (lower-case names, as Envoy sends them). */
  headers: Record<string, string>;
  /** attributes.source.address.socket_address.address: the client as Envoy saw it. */
  sourceAddress?: string;
}

interface Http {
  method: string;
  path: string;
  headers: Record<string, string>;
}

/** AttributeContext.HttpRequest: method = 2, headers = 3 (map entries: key = 1, value = 2), path = 4. */
function readHttp(r: Reader, end: number): Http {
  const http: Http = { method: '', path: '', headers: {} };
  eachField(r, end, (id, wt) => {
    if (wt !== LEN) return false;
    if (id === 2) http.method = readString(r, end);
    else if (id === 4) http.path = readString(r, end);
    else if (id === 3) {
      const entryEnd = readLength(r, end);
      let key = '';
      let value = '';
      eachField(r, entryEnd, (eid, ewt) => {
        if (ewt !== LEN || (eid !== 1 && eid !== 2)) return false;
        if (eid === 1) key = readString(r, entryEnd);
        else value = readString(r, entryEnd);
        return true;
      });
      http.headers[key] = value;
    } else return false;
    return true;
  });
  return http;
}

/** Reads the one length-delimited field `id` of the message ending at `end` with `read`; the last copy wins. */
function nested<T>(r: Reader, end: number, id: number, read: (r: Reader, end: number) => T): T | undefined {
  let found: T | undefined;
  eachField(r, end, (fid, wt) => {
    if (fid !== id || wt !== LEN) return false;
    const stop = readLength(r, end);
    found = read(r, stop);
    return true;
  });
  return found;
}

/** Peer.address (1) → Address.socket_address (1) → SocketAddress.address (2). */
function readPeerAddress(r: Reader, end: number): string | undefined {
  return nested(r, end, 1, (r1, e1) => nested(r1, e1, 1, (r2, e2) => nested(r2, e2, 2, (r3, e3) => r3.buf.toString('utf8', r3.pos, (r3.pos = e3))) ?? ''));
}

interface Attributes {
  http?: Http;
  source?: { address?: string };
}

/** AttributeContext: source = 1, request = 4 (Request.http = 2). */
function readAttributes(r: Reader, end: number): Attributes {
  const attributes: Attributes = {};
  eachField(r, end, (id, wt) => {
    if (wt !== LEN || (id !== 1 && id !== 4)) return false;
    const stop = readLength(r, end);
    if (id === 1) attributes.source = { address: readPeerAddress(r, stop) };
    else attributes.http = nested(r, stop, 2, readHttp);
    return true;
  });
  return attributes;
}

/** The Check method's request deserializer (CheckRequest.attributes = 1). */
export function decodeCheckRequest(buf: Buffer): CheckRequestFields {
  const r: Reader = { buf, pos: 0 };
  const attributes = nested(r, buf.length, 1, readAttributes);
  const http = attributes?.http;
  const sourceAddress = attributes?.source?.address;
  return {
    method: http?.method ?? '',
    path: http?.path ?? '',
    headers: http?.headers ?? {},
    ...(sourceAddress !== undefined && { sourceAddress }),
  };
}
