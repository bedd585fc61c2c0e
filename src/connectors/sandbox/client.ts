/**
 * HTTP client for the sandbox PSP API: bearer secret key, Idempotency-Key, and failures mapped onto PspFailure.
 */
import type { PspFailure, PspResult } from '../types.js';

export interface SandboxApiError {
  type?: string;
  code?: string;
  message?: string;
  [k: string]: unknown;
}

export interface CallInit {
  method?: 'GET' | 'POST';
  body?: unknown;
  idempotencyKey?: string;
  signal: AbortSignal;
}

/** A raw answer (for callers that look at a particular status/code before mapping). */
export type RawAnswer = { ok: true; status: number; body: any } | { ok: false; status: number; error: SandboxApiError } | { ok: false; status: 0; failure: PspFailure };

export async function callRaw(baseUrl: string, secretKey: string, path: string, init: CallInit): Promise<RawAnswer> {
  const headers: Record<string, string> = { authorization: `Bearer ${secretKey}`, accept: 'application/json' };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.idempotencyKey) headers['idempotency-key'] = init.idempotencyKey;
  try {
    const res = await fetch(`${baseUrl}${path}`, {
      method: init.method ?? (init.body !== undefined ? 'POST' : 'GET'),
      headers,
      body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
      signal: init.signal,
      redirect: 'error',
    });
    const text = await res.text();
    let body: any;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (res.ok) {
      if (body === undefined || typeof body !== 'object') return { ok: false, status: 0, failure: { kind: 'error', message: `sandbox answered ${res.status} without a JSON body` } };
      return { ok: true, status: res.status, body };
    }
    const error: SandboxApiError = body && typeof body.error === 'object' && body.error ? body.error : { message: `HTTP ${res.status}` };
    return { ok: false, status: res.status, error };
  } catch (err) {
    if (init.signal.aborted) return { ok: false, status: 0, failure: { kind: 'timeout' } };
    return { ok: false, status: 0, failure: { kind: 'error', message: `sandbox unreachable: ${(err as Error).message}` } };
  }
}

/** 402 card_error / 400 business refusal → declined; 409 → conflict; anything else → error. */
export function failureOf(a: Extract<RawAnswer, { ok: false }>): PspFailure {
  if ('failure' in a) return a.failure;
  const code = String(a.error.code ?? 'unknown');
  const message = String(a.error.message ?? `HTTP ${a.status}`);
  if (a.status === 402 || a.status === 400) return { kind: 'declined', code, message };
  if (a.status === 409) return { kind: 'conflict', code, message };
  return { kind: 'error', message: `sandbox answered ${a.status} ${code}: ${message}` };
}

export async function call<T>(baseUrl: string, secretKey: string, path: string, init: CallInit, map: (body: any) => T): Promise<PspResult<T>> {
  const a = await callRaw(baseUrl, secretKey, path, init);
  if (!a.ok) return { ok: false, failure: failureOf(a) };
  try {
    return { ok: true, value: map(a.body) };
  } catch (err) {
    return { ok: false, failure: { kind: 'error', message: `unexpected sandbox answer: ${(err as Error).message}` } };
  }
}
