import { randomInt } from 'node:crypto';

/**
 * Tollgate keys look like `sk_<24 random base62><6 checksum base62>`:
 * - 24 base62 characters carry 142.9 bits of randomness (well over the 128 the brief asks);
 * - the checksum is CRC-32 of everything before it, so a typo or a string that merely looks
 *   like a key is refused without a lookup, and secret scanners can verify a match offline;
 * - the prefix (configurable) says whose key it is.
 */
export const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const RANDOM_LENGTH = 24;
const CHECKSUM_LENGTH = 6;
/** How much of the random part is kept in the clear, for people to tell keys apart. */
const DISPLAY_RANDOM_CHARS = 6;

const PREFIX_RE = /^[a-z][a-z0-9]{0,15}$/;

export function isValidPrefix(prefix: string): boolean {
  return PREFIX_RE.test(prefix);
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(text: string): number {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) crc = CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function base62Fixed(value: number, width: number): string {
  let out = '';
  let v = value;
  for (let i = 0; i < width; i++) {
    out = BASE62[v % 62] + out;
    v = Math.floor(v / 62);
  }
  return out;
}

export function checksumOf(body: string): string {
  return base62Fixed(crc32(body), CHECKSUM_LENGTH);
}

/** Uniform base62 characters from the CSPRNG (randomInt rejects modulo bias). */
function randomBase62(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += BASE62[randomInt(62)];
  return out;
}

export interface GeneratedKey {
  plaintext: string;
  /** Safe to store and show: the prefix and the first few random characters. */
  displayPrefix: string;
}

export function generateKey(prefix: string): GeneratedKey {
  if (!isValidPrefix(prefix)) throw new Error(`invalid key prefix "${prefix}"`);
  const random = randomBase62(RANDOM_LENGTH);
  const body = `${prefix}_${random}`;
  return { plaintext: `${body}${checksumOf(body)}`, displayPrefix: `${prefix}_${random.slice(0, DISPLAY_RANDOM_CHARS)}` };
}

export type KeyShapeProblem = 'malformed' | 'bad_checksum' | 'unknown_prefix';

const KEY_RE = new RegExp(`^([a-z][a-z0-9]{0,15})_([0-9A-Za-z]{${RANDOM_LENGTH}})([0-9A-Za-z]{${CHECKSUM_LENGTH}})$`);

/** Checks a presented key's shape and checksum, with no lookup. */
export function checkKeyShape(candidate: string, acceptedPrefixes: readonly string[]): KeyShapeProblem | null {
  if (candidate.length > 64) return 'malformed';
  const m = KEY_RE.exec(candidate);
  if (!m) return 'malformed';
  const [, prefix, random, checksum] = m;
  if (!acceptedPrefixes.includes(prefix!)) return 'unknown_prefix';
  if (checksumOf(`${prefix}_${random}`) !== checksum) return 'bad_checksum';
  return null;
}

/** Used by tests and tooling: a random string with our shape but no valid checksum. */
export function corruptChecksum(key: string): string {
  const last = key.at(-1)!;
  return key.slice(0, -1) + (last === 'a' ? 'b' : 'a');
}
