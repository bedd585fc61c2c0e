/**
 * Message attributes and their HTTP header names (messages.md 2.2).
 */

/** The attributes of messages.md 2.2 (without `authorization`), in the order we send them. */
export const ATTRIBUTE_NAMES = [
  'transferName',
  'name',
  'event',
  'tenantIdentifier',
  'storeReference',
  'actorId',
  'publisher',
  'timestamp',
  'correlationId',
  'transactionId',
  'messageId',
] as const;
export type AttributeName = (typeof ATTRIBUTE_NAMES)[number];

/** `tenantIdentifier` → `Tenant-Identifier`: first letter upper-cased, `-` before each further capital. */
export function attributeHeaderName(attribute: string): string {
  return attribute.charAt(0).toUpperCase() + attribute.slice(1).replace(/([A-Z])/g, '-$1');
}

/**
 * Reads attributes from HTTP headers (Node's lower-cased header map): the 2.2 names with or without an
 * `X-` prefix; where both are present the unprefixed one wins. Empty values count as absent.
 */
export function attributesFromHeaders(headers: Record<string, string | string[] | undefined>): Partial<Record<AttributeName, string>> {
  const out: Partial<Record<AttributeName, string>> = {};
  const read = (h: string): string | undefined => {
    const v = headers[h];
    const s = Array.isArray(v) ? v[0] : v;
    const t = s?.trim();
    return t ? t : undefined;
  };
  for (const a of ATTRIBUTE_NAMES) {
    const h = attributeHeaderName(a).toLowerCase();
    const v = read(h) ?? read(`x-${h}`);
    if (v !== undefined) out[a] = v;
  }
  return out;
}

/** Type of a message: `transferName`, else `name`, else `event` (messages.md 2.2). */
export function messageTypeOf(attrs: Partial<Record<string, unknown>>): string | undefined {
  for (const k of ['transferName', 'name', 'event']) {
    const v = attrs[k];
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
  }
  return undefined;
}

/** Tenant of a message: `tenantIdentifier`, else `storeReference` (messages.md 2.2). */
export function messageTenantOf(attrs: Partial<Record<string, unknown>>): string | undefined {
  for (const k of ['tenantIdentifier', 'storeReference']) {
    const v = attrs[k];
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
  }
  return undefined;
}
