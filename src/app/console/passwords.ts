/**
 * Local console accounts (CONSOLE_USERS): scrypt password hashes through node:crypto.
 * Format: `scrypt$<N>$<r>$<p>$<salt b64url>$<hash b64url>` (N = 2^15, r = 8, p = 1, 16-byte salt, 32-byte hash).
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { ConsoleRole, ConsoleUser } from '../../config.js';

const N = 32768;
const R = 8;
const P = 1;
const KEY_LEN = 32;

function scryptAsync(password: string, salt: Buffer, keyLen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, keyLen, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

const maxmem = (n: number, r: number): number => 128 * n * r * 2;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(password, salt, KEY_LEN, { N, r: R, p: P, maxmem: maxmem(N, R) });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (!Number.isSafeInteger(n) || n < 2 || n > 2 ** 20 || (n & (n - 1)) !== 0 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const salt = Buffer.from(parts[4]!, 'base64url');
  const expected = Buffer.from(parts[5]!, 'base64url');
  if (expected.length < 16) return false;
  const actual = await scryptAsync(password, salt, expected.length, { N: n, r, p, maxmem: maxmem(n, r) });
  return timingSafeEqual(actual, expected);
}

/** A dummy hash verified for unknown user names, so both answers take the same time. */
let dummyHash: Promise<string> | undefined;

/** The user when name and password match, else null (same work either way). */
export async function authenticateLocal(users: readonly ConsoleUser[], name: string, password: string): Promise<{ name: string; role: ConsoleRole } | null> {
  const user = users.find((u) => u.name === name);
  if (!user) {
    dummyHash ??= hashPassword('not a password');
    await verifyPassword(password, await dummyHash);
    return null;
  }
  return (await verifyPassword(password, user.passwordHash)) ? { name: user.name, role: user.role } : null;
}

/** The role an OIDC identity gets: `operator` when the roles claim (string or array) contains "operator", else `viewer`. */
export function roleFromClaims(claims: Record<string, unknown>, rolesClaim: string): ConsoleRole {
  const v = claims[rolesClaim];
  const values = Array.isArray(v) ? v : typeof v === 'string' ? v.split(/[\s,]+/) : [];
  return values.includes('operator') ? 'operator' : 'viewer';
}
