/**
 * AES-256-GCM encryption of tenant secrets under the ENCRYPTION_KEYS key ring.
 * Ciphertext format: `<keyId>:<iv b64>:<tag b64>:<ciphertext b64>`. The first key encrypts; every key decrypts.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { EncryptionKey } from '../config.js';
import { SecretsUndecryptableError } from './secret-errors.js';

export class SecretBox {
  /** Tenants whose stored secrets failed to decrypt since start-up (tenant → key id), reported by /ready. */
  readonly undecryptable = new Map<string, string>();

  constructor(readonly keys: EncryptionKey[]) {
    if (keys.length === 0) throw new Error('key ring is empty');
  }

  get currentKeyId(): string {
    return this.keys[0]!.id;
  }

  encrypt(plaintext: string): string {
    const { id, key } = this.keys[0]!;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(id));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `${id}:${iv.toString('base64')}:${cipher.getAuthTag().toString('base64')}:${ct.toString('base64')}`;
  }

  decrypt(sealed: string): string {
    const [id, iv, tag, ct] = sealed.split(':');
    const k = this.keys.find((x) => x.id === id);
    if (!k || iv === undefined || tag === undefined || ct === undefined) throw new SecretsUndecryptableError(id ?? '', 'unknown key id');
    try {
      const decipher = createDecipheriv('aes-256-gcm', k.key, Buffer.from(iv, 'base64'));
      decipher.setAAD(Buffer.from(id!));
      decipher.setAuthTag(Buffer.from(tag, 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretsUndecryptableError(id!, 'wrong key');
    }
  }

  /** Decrypts one tenant's secret; a failure names the tenant and is remembered for /ready. */
  decryptFor(tenantIdentifier: string | undefined, sealed: string): string {
    try {
      const plain = this.decrypt(sealed);
      if (tenantIdentifier !== undefined) this.undecryptable.delete(tenantIdentifier);
      return plain;
    } catch (err) {
      if (!(err instanceof SecretsUndecryptableError) || tenantIdentifier === undefined) throw err;
      this.undecryptable.set(tenantIdentifier, err.keyId);
      throw err.forTenant(tenantIdentifier);
    }
  }

  keyIdOf(sealed: string): string {
    return sealed.split(':')[0]!;
  }
}
