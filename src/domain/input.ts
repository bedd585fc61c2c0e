/**
 * Limits every request value must respect before any use case sees it (sync-api.md 2.3: a client mistake never gets a
 * 500). Pure functions, no I/O; the HTTP layer applies them to parsed bodies, query strings and path parameters.
 *
 * - U+0000 is refused anywhere, in strings and in object keys: PostgreSQL cannot store it in text or jsonb, and no field
 *   of the contract can carry it. Other control characters are allowed (the contract forbids none; header values with
 *   control characters never reach the app, Node's HTTP parser refuses them).
 * - JSON nesting is limited to MAX_DEPTH levels (the contract's deepest body has 5; deeper values would overflow
 *   PostgreSQL's jsonb parser and JSON.stringify).
 * - Arrays hold at most MAX_ARRAY_ITEMS entries (an order of more than 1,000 items is refused, naming the limit).
 */

export const MAX_DEPTH = 32;
export const MAX_ARRAY_ITEMS = 1000;

export type InputProblemKind = 'nul' | 'depth' | 'array';

export interface InputProblem {
  kind: InputProblemKind;
  /** Dot path of the offending value (`orderData.items`, `orderData.items[3].name`); '' for the whole value. */
  field: string;
  message: string;
}

/** Whether a string contains U+0000. */
export const hasNul = (s: string): boolean => s.includes('\u0000');

/** An object of request fields (JSON.parse, qs, the query and params parsers); a Buffer's bytes are not fields. */
const isFieldObject = (v: object): v is Record<string, unknown> => !ArrayBuffer.isView(v) && !(v instanceof ArrayBuffer);

const childPath = (parent: string, key: string | number): string => (typeof key === 'number' ? `${parent}[${key}]` : parent ? `${parent}.${key}` : key);

const described = (field: string, label: string): string => (field ? `${label} "${field}"` : 'The request');

/**
 * The first problem of a parsed request value, or null. Iterative (a hostile value may be nested far deeper than the
 * call stack allows). `label` names what a path is in messages (`Field`, `Query parameter`).
 */
export function inputProblem(value: unknown, label = 'Field'): InputProblem | null {
  const stack: Array<{ v: unknown; path: string; depth: number }> = [{ v: value, path: '', depth: 0 }];
  while (stack.length > 0) {
    const { v, path, depth } = stack.pop()!;
    if (typeof v === 'string') {
      if (hasNul(v)) return { kind: 'nul', field: path, message: `${described(path, label)} must not contain the character U+0000.` };
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= MAX_DEPTH) {
      return { kind: 'depth', field: path, message: `The request nests values more than ${MAX_DEPTH} levels deep (limit ${MAX_DEPTH}).` };
    }
    if (Array.isArray(v)) {
      if (v.length > MAX_ARRAY_ITEMS) {
        return { kind: 'array', field: path, message: `${described(path, label)} has ${v.length} entries; at most ${MAX_ARRAY_ITEMS} are accepted (limit ${MAX_ARRAY_ITEMS}).` };
      }
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: childPath(path, i), depth: depth + 1 });
      continue;
    }
    if (!isFieldObject(v)) continue;
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      if (hasNul(key)) return { kind: 'nul', field: path, message: `${described(path, label)} has a key containing the character U+0000.` };
      stack.push({ v: v[key], path: childPath(path, key), depth: depth + 1 });
    }
  }
  return null;
}
