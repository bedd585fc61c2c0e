/**
 * A stored secret the key ring cannot decrypt: its key id is not in ENCRYPTION_KEYS, or a key of that id is not the
 * one that encrypted it (authentication fails). The HTTP layer answers 503 TENANT_SECRETS_UNDECRYPTABLE; /ready names
 * the tenant. Never carries the ciphertext or any key material.
 */
export class SecretsUndecryptableError extends Error {
  constructor(
    readonly keyId: string,
    readonly reason: 'unknown key id' | 'wrong key',
    readonly tenantIdentifier?: string,
  ) {
    super(
      tenantIdentifier === undefined
        ? `cannot decrypt: ${reason === 'unknown key id' ? `unknown key id "${keyId}"` : `wrong key for key id "${keyId}"`}`
        : `tenant "${tenantIdentifier}": stored secrets cannot be decrypted with key id "${keyId}" (${reason}): ` +
            (reason === 'unknown key id' ? `add key "${keyId}" to ENCRYPTION_KEYS` : `ENCRYPTION_KEYS holds another key under id "${keyId}": restore the key that encrypted them`),
    );
    this.name = 'SecretsUndecryptableError';
  }

  forTenant(tenantIdentifier: string): SecretsUndecryptableError {
    return new SecretsUndecryptableError(this.keyId, this.reason, tenantIdentifier);
  }
}
