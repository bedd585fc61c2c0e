/**
 * Small shared pieces of the sandbox PSP: ids, its error type, hashing, signing, and the "events written" signal.
 */
import { createHash, createHmac, randomFillSync } from 'node:crypto';
import { EventEmitter } from 'node:events';

export type SbxErrorType = 'invalid_request' | 'card_error' | 'authentication' | 'not_found' | 'conflict' | 'api_error';

const STATUS_OF_TYPE: Record<SbxErrorType, number> = {
  invalid_request: 400,
  card_error: 402,
  authentication: 401,
  not_found: 404,
  conflict: 409,
  api_error: 500,
};

/** A sandbox API error: `{"error":{"type","code","message"}}` with the type's status. */
export class SbxError extends Error {
  readonly status: number;
  constructor(
    readonly type: SbxErrorType,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'SbxError';
    this.status = STATUS_OF_TYPE[type];
  }
  body(): { error: Record<string, unknown> } {
    return { error: { type: this.type, code: this.code, message: this.message, ...this.extra } };
  }
}

export const notFound = (what: string, id: string): SbxError => new SbxError('not_found', 'resource_missing', `No such ${what}: '${id}'.`);
export const badParam = (param: string, message: string): SbxError => new SbxError('invalid_request', 'parameter_invalid', message, { param });
export const unexpectedState = (what: string, status: string, action: string): SbxError =>
  new SbxError('conflict', `${what}_unexpected_state`, `This ${what} is ${status}; it cannot be ${action}.`, { status });

/** A route's result: status + JSON body (also what idempotency replays). */
export interface SbxResult {
  status: number;
  body: unknown;
}

export const ok = (body: unknown, status = 200): SbxResult => ({ status, body });
export const fail = (e: SbxError): SbxResult => ({ status: e.status, body: e.body() });

/** Random bytes for ids, drawn from the system's generator 4 KiB at a time (one call per 341 ids, not one per id). */
const ID_BYTES = 12;
const idPool = Buffer.alloc(ID_BYTES * 341);
let idPoolOffset = idPool.length;

export function newId(prefix: string): string {
  if (idPoolOffset + ID_BYTES > idPool.length) {
    randomFillSync(idPool);
    idPoolOffset = 0;
  }
  const hex = idPool.toString('hex', idPoolOffset, idPoolOffset + ID_BYTES);
  idPoolOffset += ID_BYTES;
  return `${prefix}${hex}`;
}

export function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** JSON with object keys sorted, so equal bodies hash equally whatever their key order. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` (sandbox-psp.md "Webhooks"). */
export function signatureHeader(secret: string, body: string, t: number): string {
  const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return `t=${t},v1=${v1}`;
}

export const SECRET_KEY_RE = /^sk_sandbox_[A-Za-z0-9]{8,}$/;

/** The platform account a secret key belongs to; undefined when the key is refused. */
export function accountForKey(key: string): string | undefined {
  if (!SECRET_KEY_RE.test(key) || key.endsWith('revoked')) return undefined;
  return `sbx_acct_${sha256(`sandbox-account:${key}`).slice(0, 16)}`;
}

export { escapeHtml } from '../html.js';

/** Emitted after a commit that wrote events or refunds, so the dispatcher wakes up. */
export const sandboxSignal = new EventEmitter();
sandboxSignal.setMaxListeners(100);

export function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** Appends `transactionId=<id>` unless the URL already has one (sandbox-psp.md "Identifiers"). */
export function withTransactionId(url: string, id: string): string {
  const u = new URL(url);
  if (!u.searchParams.has('transactionId')) u.searchParams.set('transactionId', id);
  return u.toString();
}
