import type { CheckResponse__Input } from '@tollgate/proto';
import type { DenyStatus } from '../check/decision.js';

/**
 * The CheckResponse shapes authz-service answers, and nothing more: what `toCheckResponse` builds.
 * Encoding them through protobufjs (fromObject, then its writer's one object per field) was about
 * a quarter of the ~50 KB each Check allocated (docs/benchmarks.md, "Check"); this writes the
 * same wire bytes into one buffer. check-response-encoding.unit.test.ts decodes every shape with
 * protobufjs and compares it to protobufjs's own encoding, so a field added here without the
 * encoder fails there.
 */
export interface CheckAnswer {
  status: { code: number; message?: string };
  okResponse?: {
    headers: HeaderOption[];
    headersToRemove: string[];
    responseHeadersToAdd: HeaderOption[];
  };
  deniedResponse?: {
    /** envoy.type.v3.StatusCode, whose values are the HTTP status codes themselves. */
    status: { code: DenyStatus };
    headers: HeaderOption[];
    body: string;
  };
  dynamicMetadata?: { fields: Record<string, { stringValue: string }> };
}

export interface HeaderOption {
  header: { key: string; value: string };
  appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD';
}

// Compile-time proof that every CheckAnswer is a CheckResponse protobufjs would accept.
const _isCheckResponse = (a: CheckAnswer): CheckResponse__Input => a;
void _isCheckResponse;

/** envoy.config.core.v3.HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD */
const OVERWRITE_IF_EXISTS_OR_ADD = 2;

// Tags: (field number << 3) | wire type; 0 is a varint, 2 is length-delimited.
const TAG = {
  responseStatus: (1 << 3) | 2,
  deniedResponse: (2 << 3) | 2,
  okResponse: (3 << 3) | 2,
  dynamicMetadata: (4 << 3) | 2,
  statusCode: (1 << 3) | 0,
  statusMessage: (2 << 3) | 2,
  deniedStatus: (1 << 3) | 2,
  httpStatusCode: (1 << 3) | 0,
  deniedHeaders: (2 << 3) | 2,
  deniedBody: (3 << 3) | 2,
  okHeaders: (2 << 3) | 2,
  okHeadersToRemove: (5 << 3) | 2,
  okResponseHeadersToAdd: (6 << 3) | 2,
  optionHeader: (1 << 3) | 2,
  optionAppendAction: (3 << 3) | 0,
  headerKey: (1 << 3) | 2,
  headerValue: (2 << 3) | 2,
  structField: (1 << 3) | 2,
  entryKey: (1 << 3) | 2,
  entryValue: (2 << 3) | 2,
  stringValue: (3 << 3) | 2,
} as const;

/**
 * Two passes: the first measures every length-delimited part into `lengths`, in the order the
 * second writes their prefixes (a slot is taken before its contents are measured), so each
 * string's UTF-8 length is computed once and the buffer is allocated once at its exact size.
 */
interface Writer {
  buf: Buffer;
  pos: number;
  lengths: number[];
  next: number;
}

function varintSize(n: number): number {
  if (n < 0 || !Number.isInteger(n) || n > 0xffffffff) throw new RangeError(`cannot encode ${n} as an unsigned varint`);
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

function writeVarint(w: Writer, n: number): void {
  while (n > 0x7f) {
    w.buf[w.pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  w.buf[w.pos++] = n;
}

/** Size of a length-delimited field with a one-byte tag and a body of `n` bytes. */
function fieldSize(n: number): number {
  return 1 + varintSize(n) + n;
}

function measureString(lengths: number[], s: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  lengths.push(n);
  return fieldSize(n);
}

function writeString(w: Writer, tag: number, s: string): void {
  w.buf[w.pos++] = tag;
  writeVarint(w, w.lengths[w.next++]!);
  w.pos += w.buf.write(s, w.pos, 'utf8');
}

/** Starts a nested message: its tag and the length the first pass measured. */
function writeOpen(w: Writer, tag: number): void {
  w.buf[w.pos++] = tag;
  writeVarint(w, w.lengths[w.next++]!);
}

/** Takes the slot for a nested message's length; `close` fills it once its contents are measured. */
function open(lengths: number[]): number {
  return lengths.push(0) - 1;
}

/** Returns the size of the whole field. */
function close(lengths: number[], slot: number, n: number): number {
  lengths[slot] = n;
  return fieldSize(n);
}

function measureOptions(lengths: number[], options: HeaderOption[]): number {
  let size = 0;
  for (const o of options) {
    const option = open(lengths);
    const header = open(lengths);
    const headerSize = close(lengths, header, measureString(lengths, o.header.key) + measureString(lengths, o.header.value));
    size += close(lengths, option, headerSize + 2); // + append_action: its tag and a one-byte varint
  }
  return size;
}

function writeOptions(w: Writer, tag: number, options: HeaderOption[]): void {
  for (const o of options) {
    if (o.appendAction !== 'OVERWRITE_IF_EXISTS_OR_ADD') throw new Error(`unexpected append action ${String(o.appendAction)}`);
    writeOpen(w, tag);
    writeOpen(w, TAG.optionHeader);
    writeString(w, TAG.headerKey, o.header.key);
    writeString(w, TAG.headerValue, o.header.value);
    w.buf[w.pos++] = TAG.optionAppendAction;
    w.buf[w.pos++] = OVERWRITE_IF_EXISTS_OR_ADD;
  }
}

function measureStruct(lengths: number[], fields: Record<string, { stringValue: string }>): number {
  let size = 0;
  for (const key in fields) {
    const entry = open(lengths);
    const keySize = measureString(lengths, key);
    const value = open(lengths);
    const valueSize = close(lengths, value, measureString(lengths, fields[key]!.stringValue));
    size += close(lengths, entry, keySize + valueSize);
  }
  return size;
}

function writeStruct(w: Writer, fields: Record<string, { stringValue: string }>): void {
  for (const key in fields) {
    writeOpen(w, TAG.structField);
    writeString(w, TAG.entryKey, key);
    writeOpen(w, TAG.entryValue);
    writeString(w, TAG.stringValue, fields[key]!.stringValue);
  }
}

/**
 * The wire bytes of a CheckResponse, fields in field-number order as protobufjs writes them
 * (zero and empty values included, as protobufjs does for fields the object sets). `headroom`
 * bytes are left unwritten in front, for the gRPC message prefix, so the message is not copied.
 */
export function encodeCheckResponse(answer: CheckAnswer, headroom = 0): Buffer {
  const { status, okResponse: ok, deniedResponse: denied, dynamicMetadata } = answer;
  if (ok && denied) throw new Error('a CheckResponse is either allowed or denied');
  const lengths: number[] = [];
  const statusSlot = open(lengths);
  const messageSize = status.message === undefined ? 0 : measureString(lengths, status.message);
  let size = close(lengths, statusSlot, 1 + varintSize(status.code) + messageSize);
  if (denied) {
    const deniedSlot = open(lengths);
    const httpStatus = close(lengths, open(lengths), 1 + varintSize(denied.status.code));
    const headers = measureOptions(lengths, denied.headers);
    size += close(lengths, deniedSlot, httpStatus + headers + measureString(lengths, denied.body));
  }
  if (ok) {
    const okSlot = open(lengths);
    let n = measureOptions(lengths, ok.headers);
    for (const h of ok.headersToRemove) n += measureString(lengths, h);
    size += close(lengths, okSlot, n + measureOptions(lengths, ok.responseHeadersToAdd));
  }
  if (dynamicMetadata) {
    const metadataSlot = open(lengths);
    size += close(lengths, metadataSlot, measureStruct(lengths, dynamicMetadata.fields));
  }

  const w: Writer = { buf: Buffer.allocUnsafe(headroom + size), pos: headroom, lengths, next: 0 };
  writeOpen(w, TAG.responseStatus);
  w.buf[w.pos++] = TAG.statusCode;
  writeVarint(w, status.code);
  if (status.message !== undefined) writeString(w, TAG.statusMessage, status.message);
  if (denied) {
    writeOpen(w, TAG.deniedResponse);
    writeOpen(w, TAG.deniedStatus);
    w.buf[w.pos++] = TAG.httpStatusCode;
    writeVarint(w, denied.status.code);
    writeOptions(w, TAG.deniedHeaders, denied.headers);
    writeString(w, TAG.deniedBody, denied.body);
  }
  if (ok) {
    writeOpen(w, TAG.okResponse);
    writeOptions(w, TAG.okHeaders, ok.headers);
    for (const h of ok.headersToRemove) writeString(w, TAG.okHeadersToRemove, h);
    writeOptions(w, TAG.okResponseHeadersToAdd, ok.responseHeadersToAdd);
  }
  if (dynamicMetadata) {
    writeOpen(w, TAG.dynamicMetadata);
    writeStruct(w, dynamicMetadata.fields);
  }
  if (w.pos !== headroom + size) throw new Error(`CheckResponse encoding wrote ${w.pos - headroom} bytes of ${size}`);
  return w.buf;
}
