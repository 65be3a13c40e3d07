import { describe, expect, it } from 'vitest';
import { BASE62, checkKeyShape, corruptChecksum, generateKey, RANDOM_LENGTH } from '../src/domain/key-format.js';
import { KeyHasher, safeEqual } from '../src/domain/key-hash.js';

describe('key format', () => {
  it('generates <prefix>_<24 base62><6 checksum> with a display prefix that is not the key', () => {
    const { plaintext, displayPrefix } = generateKey('sk');
    expect(plaintext).toMatch(/^sk_[0-9A-Za-z]{30}$/);
    expect(checkKeyShape(plaintext, ['sk'])).toBeNull();
    expect(plaintext.startsWith(displayPrefix)).toBe(true);
    expect(displayPrefix.length).toBeLessThan(plaintext.length - 20);
  });

  it('carries at least 128 bits of randomness', () => {
    expect(RANDOM_LENGTH * Math.log2(BASE62.length)).toBeGreaterThanOrEqual(128);
  });

  it('never repeats across many keys', () => {
    const seen = new Set(Array.from({ length: 5000 }, () => generateKey('sk').plaintext));
    expect(seen.size).toBe(5000);
  });

  it('refuses typos, other prefixes and junk without a lookup', () => {
    const { plaintext } = generateKey('astrid');
    expect(checkKeyShape(plaintext, ['astrid'])).toBeNull();
    expect(checkKeyShape(corruptChecksum(plaintext), ['astrid'])).toBe('bad_checksum');
    // A single changed character in the random part is caught by the checksum.
    const i = plaintext.indexOf('_') + 3;
    const typo = plaintext.slice(0, i) + (plaintext[i] === 'x' ? 'y' : 'x') + plaintext.slice(i + 1);
    expect(checkKeyShape(typo, ['astrid'])).toBe('bad_checksum');
    expect(checkKeyShape(plaintext, ['sk'])).toBe('unknown_prefix');
    for (const junk of ['', 'sk_', 'sk-abc', `${plaintext}x`, plaintext.replace('_', '-'), 'x'.repeat(10_000), 'sk_ünïcödé'.padEnd(33, 'a')]) {
      expect(checkKeyShape(junk, ['sk', 'astrid'])).not.toBeNull();
    }
  });

  it('rejects invalid prefixes at generation', () => {
    expect(() => generateKey('Bad')).toThrow(/invalid key prefix/);
    expect(() => generateKey('a'.repeat(17))).toThrow();
  });
});

describe('key hashing', () => {
  it('hashes under the newest secret and can match under older ones', () => {
    const oldH = new KeyHasher(['o'.repeat(32)]);
    const rotated = new KeyHasher(['n'.repeat(32), 'o'.repeat(32)]);
    const key = generateKey('sk').plaintext;
    expect(rotated.candidates(key)).toEqual([rotated.primary(key), oldH.primary(key)]);
    expect(rotated.primary(key)).not.toBe(oldH.primary(key));
    expect(rotated.primary(key)).toMatch(/^[0-9a-f]{64}$/);
    expect(rotated.primary(key)).not.toContain(key);
  });

  it('compares secrets in constant time and correctly', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
  });
});
