/**
 * The protobuf wire format, read in place: what the hand-written decoders of the gRPC methods
 * (check-request-decoding.ts, h2-grpc-health.ts) walk instead of decoding whole messages.
 */
/** The length-delimited wire type (strings, bytes, messages, packed fields). */
export const LEN = 2;

export interface Reader {
  buf: Buffer;
  pos: number;
}

function readVarint(r: Reader): number {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (r.pos >= r.buf.length) throw new RangeError('protobuf: truncated varint');
    const b = r.buf[r.pos++]!;
    if (shift < 32) result += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return result;
    shift += 7;
    if (shift > 63) throw new RangeError('protobuf: varint over 64 bits');
  }
}

/** The end of the length-delimited field starting at `r.pos`. */
export function readLength(r: Reader, end: number): number {
  const n = readVarint(r);
  if (r.pos + n > end) throw new RangeError('protobuf: field runs past its message');
  return r.pos + n;
}

export function readString(r: Reader, end: number): string {
  const stop = readLength(r, end);
  const s = r.buf.toString('utf8', r.pos, stop);
  r.pos = stop;
  return s;
}

function skip(r: Reader, wireType: number, end: number): void {
  switch (wireType) {
    case 0:
      readVarint(r);
      return;
    case 1:
      r.pos += 8;
      break;
    case LEN:
      r.pos = readLength(r, end);
      return;
    case 3:
      for (;;) {
        const tag = readVarint(r);
        if ((tag & 7) === 4) return;
        skip(r, tag & 7, end);
      }
    case 5:
      r.pos += 4;
      break;
    default:
      throw new RangeError(`protobuf: wire type ${wireType}`);
  }
  if (r.pos > end) throw new RangeError('protobuf: field runs past its message');
}

/**
 * Calls `field` for each field of the message ending at `end`, with the reader at the field's
 * value; `field` returns false to have it skipped.
 */
export function eachField(r: Reader, end: number, field: (id: number, wireType: number) => boolean): void {
  while (r.pos < end) {
    const tag = readVarint(r);
    if (!field(tag >>> 3, tag & 7)) skip(r, tag & 7, end);
  }
  if (r.pos !== end) throw new RangeError('protobuf: field runs past its message');
}
