/**
 * Limits every request value must respect before any use case sees it (sync-api.md 2.3: a client mistake never gets a
 * 500). Pure functions, no I/O; the HTTP layer applies them to parsed bodies, query strings and path parameters.
 *
 * - U+0000 and unpaired UTF-16 surrogates (`"\ud800"` in JSON) are refused anywhere, in strings and in object keys:
 *   PostgreSQL cannot store them in text or jsonb, and no field of the contract can carry them. Other control characters
 *   are allowed (the contract forbids none; header values with control characters never reach the app, Node's HTTP
 *   parser refuses them).
 * - JSON nesting is limited to MAX_DEPTH levels (the contract's deepest body has 5; deeper values would overflow
 *   PostgreSQL's jsonb parser and JSON.stringify).
 * - Arrays hold at most MAX_ARRAY_ITEMS entries (an order of more than 1,000 items is refused, naming the limit).
 */

export const MAX_DEPTH = 32;
export const MAX_ARRAY_ITEMS = 1000;

export type InputProblemKind = 'character' | 'depth' | 'array';

export interface InputProblem {
  kind: InputProblemKind;
  /** Dot path of the offending value (`orderData.items`, `orderData.items[3].name`); '' for the whole value. */
  field: string;
  message: string;
}

/** A JSON object (not null, not an array). */
export const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Whether a string contains U+0000 or an unpaired surrogate (text PostgreSQL cannot store). */
export const hasUnstorableText = (s: string): boolean => s.includes('\u0000') || /\p{Cs}/u.test(s);

const CHARACTERS = 'the character U+0000 or an unpaired surrogate';

/** An object of request fields (JSON.parse, qs, the query and params parsers); a Buffer's bytes are not fields. */
const isFieldObject = (v: object): v is Record<string, unknown> => !ArrayBuffer.isView(v) && !(v instanceof ArrayBuffer);

const childPath = (parent: string, key: string | number): string => (typeof key === 'number' ? `${parent}[${key}]` : parent ? `${parent}.${key}` : key);

const described = (field: string, label: string): string => (field ? `${label} "${field}"` : 'The request');

/**
 * The first problem of a parsed request value, or null. Iterative (a hostile value may be nested far deeper than the
 * call stack allows). `label` names what a path is in messages (`Field`, `Query parameter`).
 */
export function inputProblem(value: unknown, label = 'Field', limits: { depth: number; items: number } = { depth: MAX_DEPTH, items: MAX_ARRAY_ITEMS }): InputProblem | null {
  const stack: Array<{ v: unknown; path: string; depth: number }> = [{ v: value, path: '', depth: 0 }];
  while (stack.length > 0) {
    const { v, path, depth } = stack.pop()!;
    if (typeof v === 'string') {
      if (hasUnstorableText(v)) return { kind: 'character', field: path, message: `${described(path, label)} must not contain ${CHARACTERS}.` };
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= limits.depth) {
      return { kind: 'depth', field: path, message: `The request nests values more than ${MAX_DEPTH} levels deep (limit ${MAX_DEPTH}).` };
    }
    if (Array.isArray(v)) {
      if (v.length > limits.items) {
        return { kind: 'array', field: path, message: `${described(path, label)} has ${v.length} entries; at most ${MAX_ARRAY_ITEMS} are accepted (limit ${MAX_ARRAY_ITEMS}).` };
      }
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: childPath(path, i), depth: depth + 1 });
      continue;
    }
    if (!isFieldObject(v)) continue;
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      if (hasUnstorableText(key)) return { kind: 'character', field: path, message: `${described(path, label)} has a key containing ${CHARACTERS}.` };
      stack.push({ v: v[key], path: childPath(path, key), depth: depth + 1 });
    }
  }
  return null;
}

/** Nesting a PSP's webhook payload may have (PSP events are a few levels deep; PostgreSQL's jsonb has its own limit). */
export const WEBHOOK_MAX_DEPTH = 64;

/**
 * What makes a JSON text (a PSP's webhook payload, kept as raw bytes for its signature) impossible to store: U+0000 or an
 * unpaired surrogate in a string or key, or nesting beyond WEBHOOK_MAX_DEPTH. Null when storable or not JSON at all (the
 * connector decides about those). Array sizes are the PSP's business.
 */
export function webhookPayloadProblem(text: string): InputProblem | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  return inputProblem(parsed, 'Field', { depth: WEBHOOK_MAX_DEPTH, items: Number.POSITIVE_INFINITY });
}

// ---- submitted secrets (never echoed: sync-api.md 3.1) ----

export const SECRET_MASK = '********';
/** Keys whose values are secrets whatever the connector (`secretKey`, `webhookSecret`, `clientSecret`, `password`...). */
const SECRET_KEY_NAME = /secret|password|passwd|token|api[-_]?key/i;
/** Shorter values are not masked (they would mask ordinary words of a message). */
const MIN_SECRET_LENGTH = 6;

/**
 * The secret values a request submitted: every string under a key named like a secret or listed in `secretKeys` (the
 * connectors' secret fields), also inside a `configuration` sent as a string of JSON (4.1). Longest first.
 */
export function submittedSecrets(body: unknown, secretKeys: ReadonlySet<string>): string[] {
  const found = new Set<string>();
  const stack: Array<{ v: unknown; secret: boolean; depth: number }> = [{ v: body, secret: false, depth: 0 }];
  while (stack.length > 0) {
    const { v, secret, depth } = stack.pop()!;
    if (depth > MAX_DEPTH + 2) continue;
    if (typeof v === 'string') {
      if (secret && v.trim().length >= MIN_SECRET_LENGTH) found.add(v).add(v.trim());
      continue;
    }
    if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v)) continue;
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const isSecret = secret || secretKeys.has(k) || SECRET_KEY_NAME.test(k);
      if (k === 'configuration' && typeof x === 'string') {
        try {
          stack.push({ v: JSON.parse(x), secret: isSecret, depth: depth + 1 });
        } catch {
          /* not JSON: configure answers 443 without echoing it */
        }
      }
      stack.push({ v: x, secret: isSecret, depth: depth + 1 });
    }
  }
  return [...found].sort((a, b) => b.length - a.length);
}

/** `text` with every occurrence of each secret (raw or as JSON escapes it) replaced by SECRET_MASK. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    for (const form of new Set([s, JSON.stringify(s).slice(1, -1), JSON.stringify(JSON.stringify(s)).slice(3, -3)])) {
      if (form.length >= MIN_SECRET_LENGTH && out.includes(form)) out = out.split(form).join(SECRET_MASK);
    }
  }
  return out;
}
