import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * Envelope encryption for provider credentials (seed 002): each secret gets its own random
 * data key (DEK); the secret is sealed with the DEK and the DEK with a master key, both with
 * AES-256-GCM. Both seals bind the owner and provider as additional authenticated data, so a
 * row copied to another user or provider fails to open. Rotating the master key re-wraps only
 * the 32-byte DEKs; secrets are never decrypted for it.
 */
export interface MasterKey {
  id: string;
  key: Buffer;
}

export interface SealedSecret {
  masterKeyId: string;
  /** iv (12) ‖ ciphertext (32) ‖ tag (16) */
  wrappedDek: Buffer;
  /** iv (12) ‖ ciphertext ‖ tag (16) */
  ciphertext: Buffer;
}

export class VaultDecryptError extends Error {
  constructor(message = 'provider credential could not be decrypted (tampered, moved, or wrong master key)') {
    super(message);
    this.name = 'VaultDecryptError';
  }
}

const IV = 12;
const TAG = 16;

function seal(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const iv = randomBytes(IV);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, ct, cipher.getAuthTag()]);
}

function open(key: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  if (sealed.length < IV + TAG) throw new VaultDecryptError();
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV));
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
    return Buffer.concat([decipher.update(sealed.subarray(IV, sealed.length - TAG)), decipher.final()]);
  } catch {
    throw new VaultDecryptError();
  }
}

function bindingOf(userId: string, provider: string): Buffer {
  // Length-prefixed, so ("ab","c") and ("a","bc") never share a binding.
  return Buffer.from(`tollgate/provider-key/v1\n${userId.length}:${userId}\n${provider.length}:${provider}`, 'utf8');
}

/**
 * Operator credentials (managed phase) bind their own id and provider under a different label,
 * so a user's sealed row can never be opened as an operator's (or the other way round).
 */
function operatorBindingOf(credentialId: string, provider: string): Buffer {
  return Buffer.from(`tollgate/operator-credential/v1\n${credentialId.length}:${credentialId}\n${provider.length}:${provider}`, 'utf8');
}

/** Outbound webhook signing secrets bind their endpoint's id under a label of their own. */
function webhookBindingOf(endpointId: string): Buffer {
  return Buffer.from(`tollgate/webhook-secret/v1\n${endpointId.length}:${endpointId}`, 'utf8');
}

export class Envelope {
  private readonly byId: Map<string, Buffer>;

  constructor(private readonly masterKeys: readonly MasterKey[]) {
    if (masterKeys.length === 0) throw new Error('at least one vault master key is required');
    this.byId = new Map(masterKeys.map((m) => [m.id, m.key]));
  }

  get currentKeyId(): string {
    return this.masterKeys[0]!.id;
  }

  sealSecret(secret: string, userId: string, provider: string): SealedSecret {
    return this.sealBound(secret, bindingOf(userId, provider));
  }

  sealOperatorSecret(secret: string, credentialId: string, provider: string): SealedSecret {
    return this.sealBound(secret, operatorBindingOf(credentialId, provider));
  }

  openOperatorSecret(sealed: SealedSecret, credentialId: string, provider: string): string {
    return this.openBound(sealed, operatorBindingOf(credentialId, provider));
  }

  sealWebhookSecret(secret: string, endpointId: string): SealedSecret {
    return this.sealBound(secret, webhookBindingOf(endpointId));
  }

  openWebhookSecret(sealed: SealedSecret, endpointId: string): string {
    return this.openBound(sealed, webhookBindingOf(endpointId));
  }

  private sealBound(secret: string, aad: Buffer): SealedSecret {
    const dek = randomBytes(32);
    try {
      return {
        masterKeyId: this.currentKeyId,
        wrappedDek: seal(this.masterKeys[0]!.key, dek, aad),
        ciphertext: seal(dek, Buffer.from(secret, 'utf8'), aad),
      };
    } finally {
      dek.fill(0);
    }
  }

  openSecret(sealed: SealedSecret, userId: string, provider: string): string {
    return this.openBound(sealed, bindingOf(userId, provider));
  }

  private openBound(sealed: SealedSecret, aad: Buffer): string {
    const master = this.byId.get(sealed.masterKeyId);
    if (!master) throw new VaultDecryptError(`provider credential sealed with unknown master key "${sealed.masterKeyId}"`);
    const dek = open(master, sealed.wrappedDek, aad);
    try {
      return open(dek, sealed.ciphertext, aad).toString('utf8');
    } finally {
      dek.fill(0);
    }
  }

  /** Moves a user's sealed secret to the newest master key without touching the secret's ciphertext. */
  rewrap(sealed: SealedSecret, userId: string, provider: string): SealedSecret {
    return this.rewrapBound(sealed, bindingOf(userId, provider));
  }

  /** The same for an operator credential, under its own binding. */
  rewrapOperator(sealed: SealedSecret, credentialId: string, provider: string): SealedSecret {
    return this.rewrapBound(sealed, operatorBindingOf(credentialId, provider));
  }

  /** The same for a webhook endpoint's signing secret, under the endpoint's binding. */
  rewrapWebhook(sealed: SealedSecret, endpointId: string): SealedSecret {
    return this.rewrapBound(sealed, webhookBindingOf(endpointId));
  }

  private rewrapBound(sealed: SealedSecret, aad: Buffer): SealedSecret {
    if (sealed.masterKeyId === this.currentKeyId) return sealed;
    const master = this.byId.get(sealed.masterKeyId);
    if (!master) throw new VaultDecryptError(`provider credential sealed with unknown master key "${sealed.masterKeyId}"`);
    const dek = open(master, sealed.wrappedDek, aad);
    try {
      return { masterKeyId: this.currentKeyId, wrappedDek: seal(this.masterKeys[0]!.key, dek, aad), ciphertext: sealed.ciphertext };
    } finally {
      dek.fill(0);
    }
  }
}

/** A short, non-reversible label for a secret, so people can tell which one is stored. */
export function fingerprint(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex').slice(0, 12);
}

const PROVIDER_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** Seed 000: provider names are case-insensitive; stored and compared lower-case. */
export function normaliseProvider(raw: string): string | null {
  const p = raw.trim().toLowerCase();
  return PROVIDER_NAME_RE.test(p) ? p : null;
}
