/**
 * Start-up check of the key ring (ENCRYPTION_KEYS) against what is stored: for every key id found among the stored
 * tenant secrets, a sample of the most recently written ciphertexts must decrypt. A ring that lost a key, or holds
 * another key under the same id, stops start-up with one line naming the key id, instead of a 500 per request.
 */
import type { Queryable } from './db.js';
import type { SecretBox } from './secret-box.js';
import { SecretsUndecryptableError } from './secret-errors.js';

/** Ciphertexts tried per key id. */
export const KEY_CHECK_SAMPLE_PER_KEY = 3;
/** Most recently updated stored secrets looked at. */
const KEY_CHECK_SCAN_LIMIT = 500;

export interface KeyCheckReport {
  /** key id → ciphertexts that decrypted */
  checked: Record<string, number>;
}

/** Throws a SecretsUndecryptableError naming the key id (and a tenant) when a sampled secret does not decrypt. */
export async function checkKeyRing(db: Queryable, box: SecretBox): Promise<KeyCheckReport> {
  const r = await db.query<{ tenant_identifier: string; sealed: string }>(
    `SELECT t.tenant_identifier, s.value AS sealed
       FROM tenants t, jsonb_each_text(t.secrets) s
      ORDER BY t.updated_at DESC, t.tenant_identifier
      LIMIT ${KEY_CHECK_SCAN_LIMIT}`,
  );
  const checked: Record<string, number> = {};
  for (const row of r.rows) {
    const keyId = box.keyIdOf(row.sealed);
    if ((checked[keyId] ?? 0) >= KEY_CHECK_SAMPLE_PER_KEY) continue;
    try {
      box.decrypt(row.sealed);
    } catch (err) {
      if (err instanceof SecretsUndecryptableError) throw err.forTenant(row.tenant_identifier);
      throw err;
    }
    checked[keyId] = (checked[keyId] ?? 0) + 1;
  }
  return { checked };
}
