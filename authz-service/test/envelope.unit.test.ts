import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Envelope, fingerprint, normaliseProvider, type SealedSecret, VaultDecryptError } from '../src/vault/envelope.js';

const k1 = { id: 'k1', key: randomBytes(32) };
const k2 = { id: 'k2', key: randomBytes(32) };

describe('envelope encryption', () => {
  const env1 = new Envelope([k1]);
  const secret = 'daily_' + randomBytes(16).toString('hex');

  it('round-trips, and the sealed form contains no trace of the secret', () => {
    const sealed = env1.sealSecret(secret, 'alice', 'daily');
    expect(env1.openSecret(sealed, 'alice', 'daily')).toBe(secret);
    expect(sealed.ciphertext.includes(Buffer.from(secret))).toBe(false);
    expect(sealed.masterKeyId).toBe('k1');
    // A fresh data key and IV each time.
    expect(env1.sealSecret(secret, 'alice', 'daily').ciphertext.equals(sealed.ciphertext)).toBe(false);
  });

  it('keeps operator and user seals apart: neither opens as the other, nor under another id or provider', () => {
    const op = env1.sealOperatorSecret(secret, 'opc_1', 'daily');
    expect(env1.openOperatorSecret(op, 'opc_1', 'daily')).toBe(secret);
    // A user's row swapped in as an operator credential (same strings for id and user) fails, and back.
    const user = env1.sealSecret(secret, 'opc_1', 'daily');
    expect(() => env1.openOperatorSecret(user, 'opc_1', 'daily')).toThrow(VaultDecryptError);
    expect(() => env1.openSecret(op, 'opc_1', 'daily')).toThrow(VaultDecryptError);
    expect(() => env1.openOperatorSecret(op, 'opc_2', 'daily')).toThrow(VaultDecryptError);
    expect(() => env1.openOperatorSecret(op, 'opc_1', 'openai')).toThrow(VaultDecryptError);
  });

  it('refuses tampered ciphertext or wrapped key', () => {
    const sealed = env1.sealSecret(secret, 'alice', 'daily');
    const flip = (b: Buffer, i: number) => {
      const c = Buffer.from(b);
      c[i] = c[i]! ^ 1;
      return c;
    };
    expect(() => env1.openSecret({ ...sealed, ciphertext: flip(sealed.ciphertext, 14) }, 'alice', 'daily')).toThrow(VaultDecryptError);
    expect(() => env1.openSecret({ ...sealed, wrappedDek: flip(sealed.wrappedDek, 20) }, 'alice', 'daily')).toThrow(VaultDecryptError);
    expect(() => env1.openSecret({ ...sealed, ciphertext: sealed.ciphertext.subarray(0, 10) }, 'alice', 'daily')).toThrow(VaultDecryptError);
  });

  it('a row copied to another user or provider does not open', () => {
    const sealed = env1.sealSecret(secret, 'alice', 'daily');
    expect(() => env1.openSecret(sealed, 'bob', 'daily')).toThrow(VaultDecryptError);
    expect(() => env1.openSecret(sealed, 'alice', 'zoom')).toThrow(VaultDecryptError);
    // Length-prefixed binding: shifting characters between the fields is not a loophole.
    const s2 = env1.sealSecret(secret, 'ab', 'c');
    expect(() => env1.openSecret(s2, 'a', 'bc')).toThrow(VaultDecryptError);
  });

  // The same rotation for both sealed-secret tables, each under its own binding.
  const kinds = {
    user: {
      seal: (e: Envelope) => e.sealSecret(secret, 'alice', 'daily'),
      rewrap: (e: Envelope, s: SealedSecret) => e.rewrap(s, 'alice', 'daily'),
      open: (e: Envelope, s: SealedSecret) => e.openSecret(s, 'alice', 'daily'),
    },
    operator: {
      seal: (e: Envelope) => e.sealOperatorSecret(secret, 'opc_1', 'daily'),
      rewrap: (e: Envelope, s: SealedSecret) => e.rewrapOperator(s, 'opc_1', 'daily'),
      open: (e: Envelope, s: SealedSecret) => e.openOperatorSecret(s, 'opc_1', 'daily'),
    },
  };
  it.each(Object.entries(kinds))('rewraps a %s credential to the newest master key without changing the secret ciphertext', (_kind, k) => {
    const old = k.seal(env1);
    const moved = k.rewrap(new Envelope([k2, k1]), old);
    expect(moved.masterKeyId).toBe('k2');
    expect(moved.ciphertext.equals(old.ciphertext)).toBe(true);
    expect(k.open(new Envelope([k2]), moved)).toBe(secret);
    expect(() => k.open(new Envelope([k2]), old)).toThrow(/unknown master key/);
  });

  it('rewraps an operator credential only under its own binding', () => {
    const old = env1.sealOperatorSecret(secret, 'opc_1', 'daily');
    const both = new Envelope([k2, k1]);
    // A user's rewrap of an operator row (or one moved to another id) does not open its data key.
    expect(() => both.rewrap(old, 'opc_1', 'daily')).toThrow(VaultDecryptError);
    expect(() => both.rewrapOperator(old, 'opc_2', 'daily')).toThrow(VaultDecryptError);
  });

  it('normalises provider names case-insensitively and fingerprints without revealing', () => {
    expect(normaliseProvider(' Daily ')).toBe('daily');
    expect(normaliseProvider('DAILY')).toBe('daily');
    expect(normaliseProvider('bad name')).toBeNull();
    expect(normaliseProvider('x'.repeat(40))).toBeNull();
    expect(fingerprint(secret)).toMatch(/^[0-9a-f]{12}$/);
    expect(secret).not.toContain(fingerprint(secret));
  });
});
