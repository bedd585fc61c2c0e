/**
 * Errors as values for the payment domain and use cases. The HTTP layer maps them onto the one error body
 * of sync-api.md section 3. `code` is the machine code of sync-api.md 3.2 (numbers 443/444 for configure).
 */
export type ErrorCode =
  | 'INVALID_REQUEST'
  | 'VALIDATION_FAILED'
  | 'TENANT_IDENTIFIER_MISSING'
  | 'UNAUTHORIZED'
  | 'TENANT_DISCONNECTED'
  | 'TENANT_NOT_FOUND'
  | 'PAYMENT_NOT_FOUND'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'ILLEGAL_TRANSITION'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'UNSUPPORTED_OPERATION'
  | 'PAYMENT_DECLINED'
  | 'PSP_ERROR'
  | 'PSP_TIMEOUT'
  | 'RATE_LIMITED'
  | 'WEBHOOK_UNATTRIBUTED'
  | 'CONNECTOR_UNAVAILABLE'
  | 'INTERNAL_ERROR';

export const STATUS_OF: Record<ErrorCode, number> = {
  INVALID_REQUEST: 400,
  VALIDATION_FAILED: 400,
  TENANT_IDENTIFIER_MISSING: 400,
  UNAUTHORIZED: 401,
  TENANT_DISCONNECTED: 403,
  TENANT_NOT_FOUND: 404,
  PAYMENT_NOT_FOUND: 404,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  ILLEGAL_TRANSITION: 409,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNSUPPORTED_OPERATION: 422,
  PAYMENT_DECLINED: 422,
  PSP_ERROR: 502,
  PSP_TIMEOUT: 504,
  RATE_LIMITED: 429,
  WEBHOOK_UNATTRIBUTED: 503,
  CONNECTOR_UNAVAILABLE: 503,
  INTERNAL_ERROR: 500,
};

export interface ErrorEntry {
  code: string | number;
  status: number;
  message: string;
  /**
   * What was wrong and where, for the person reading the answer (configure's 443). Our addition to the section 3 body:
   * `detail` stays the same text as `message` (sync-api.md 3), clients that do not know `hint` ignore it.
   */
  hint?: string;
  field?: string;
  confirm?: { labelOk: string; labelCancel: string };
}

/** A failure the caller can act on. Thrown by use cases and mapped by the HTTP layer; never carries secrets. */
export class AppError extends Error {
  readonly status: number;
  readonly entries: ErrorEntry[];
  /** Extra top-level keys of the error body (e.g. `transfers: []`). */
  readonly extra: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    code: ErrorCode | string | number,
    message: string,
    opts: { status?: number; field?: string; hint?: string; extra?: Record<string, unknown>; headers?: Record<string, string>; confirm?: ErrorEntry['confirm'] } = {},
  ) {
    super(message);
    this.name = 'AppError';
    this.status = opts.status ?? STATUS_OF[code as ErrorCode] ?? 400;
    const entry: ErrorEntry = { code, status: this.status, message };
    if (opts.field !== undefined) entry.field = opts.field;
    if (opts.hint !== undefined) entry.hint = opts.hint;
    if (opts.confirm !== undefined) entry.confirm = opts.confirm;
    this.entries = [entry];
    this.extra = opts.extra ?? {};
    this.headers = opts.headers ?? {};
  }

  get code(): string | number {
    return this.entries[0]!.code;
  }
}

export const validationError = (field: string, message?: string): AppError =>
  new AppError('VALIDATION_FAILED', message ?? `Field "${field}" is required.`, { field });

export const paymentNotFound = (transactionId: string): AppError =>
  new AppError('PAYMENT_NOT_FOUND', `Could not find a payment with the transaction id "${transactionId}"`);

export const illegalTransition = (from: string, to: string): AppError =>
  new AppError('ILLEGAL_TRANSITION', `Payment status transition from "${from}" to "${to}" is not allowed.`);
