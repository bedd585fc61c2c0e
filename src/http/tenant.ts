/**
 * Tenant header resolution and the tenant checks of sync-api.md 2.2.
 */
import type { FastifyRequest } from 'fastify';
import { AppError } from '../domain/errors.js';
import type { TenantLookup } from '../store/tenant-cache.js';

/** First value of a header (repeats may arrive joined by ", "), trimmed; undefined when empty. */
export function firstHeader(req: FastifyRequest, name: string): string | undefined {
  const raw = req.headers[name];
  const v = Array.isArray(raw) ? raw[0] : raw;
  if (v === undefined) return undefined;
  // Repeated headers may arrive joined by ", " — the first value counts.
  const first = v.split(',')[0]!.trim();
  return first === '' ? undefined : first;
}

/** `X-Tenant-Identifier`, else `X-Store-Reference`; undefined when both are missing or empty. */
export function tenantFromHeaders(req: FastifyRequest): string | undefined {
  const t = firstHeader(req, 'x-tenant-identifier') ?? firstHeader(req, 'x-store-reference');
  if (t === undefined) return undefined;
  return t.slice(0, 255);
}

export interface TenantRow {
  tenant_identifier: string;
  status: 'NEW' | 'CONNECTED' | 'DISCONNECTED';
  is_active: boolean;
  revision: number;
  config: Record<string, unknown>;
  secrets: Record<string, string>;
  previous_secrets: Record<string, { value: string; until: string }>;
  locale: string;
  announced_methods: Array<{ name: string; payload: Record<string, unknown> }>;
  connector: string | null;
}

/** Applies 2.2 in order and returns the active tenant. */
export async function requireActiveTenant(req: FastifyRequest, tenants: TenantLookup): Promise<TenantRow> {
  const id = tenantFromHeaders(req);
  if (id === undefined) throw new AppError('TENANT_IDENTIFIER_MISSING', 'X-Tenant-Identifier in header is required.');
  const row: TenantRow | null = await tenants.get(id);
  if (!row) throw new AppError('TENANT_NOT_FOUND', 'Could not find an App configuration for the given Tenant');
  if (row.status === 'DISCONNECTED') throw new AppError('TENANT_DISCONNECTED', 'Tenant is disconnected.');
  return row;
}
