/**
 * Tenants as this instance last read them, so a request does not read its tenant row again (issue 12).
 *
 * Invalidation across processes: a trigger announces every change of a `tenants` row on `oacp_tenant_changed`
 * (migrations/009_tenant_notify.sql); each instance LISTENs and drops that tenant. Within this process, the use cases
 * writes through `saveTenant` are dropped right after their commit (`onTenantSaved`), so the next request of the same
 * shop reads its own write even before the notification arrives.
 *
 * Rules that keep it correct:
 * - Rows are cached only while the listener is live; when its connection drops (notifications may be missed) the
 *   cache is emptied and every read goes to the database until the listener is back.
 * - A read that started before an invalidation is not cached (generation counter), so a row read concurrently with a
 *   change can never outlive the change's notification.
 * - Only existing rows are cached (an unknown tenant id from a hostile request costs a read, never memory), at most
 *   `maxEntries` of them (least recently read dropped first).
 * - A row is read again after `maxAgeMs` at the latest: a safety net for notifications lost without the connection
 *   dropping (e.g. behind a transaction-pooling proxy, where LISTEN does not work).
 */
import type { Db } from './db.js';
import { loadTenant, onTenantSaved, type TenantRecord } from './tenants.js';

export const TENANT_CHANGED_CHANNEL = 'oacp_tenant_changed';
/** Longest a cached row is served without reading it again. */
export const TENANT_CACHE_MAX_AGE_MS = 30_000;

export interface TenantLookup {
  /** The tenant's row or null (cached while the change listener is live). */
  get(tenantIdentifier: string): Promise<TenantRecord | null>;
  /** Drops the tenant from this instance's cache (call after committing a change to its row). */
  invalidate(tenantIdentifier: string): void;
}

export class TenantCache implements TenantLookup {
  private readonly rows = new Map<string, { row: TenantRecord; at: number }>();
  private generation = 0;
  private live = false;
  private unsubscribe: (() => Promise<void>) | undefined;
  private stopLocal: (() => void) | undefined;
  /** Reads answered from memory and from the database (for tests and the benchmark). */
  readonly counts = { hits: 0, misses: 0 };

  constructor(
    private readonly db: Pick<Db, 'query' | 'listen'>,
    private readonly maxEntries = 10_000,
    private readonly maxAgeMs = TENANT_CACHE_MAX_AGE_MS,
  ) {}

  /** Starts listening for changes. Until then (and whenever the listener is down) nothing is cached. */
  async start(): Promise<void> {
    if (this.unsubscribe) return;
    // this process's own writes: dropped right after their commit, before any notification arrives
    this.stopLocal = onTenantSaved((tenant) => this.invalidate(tenant));
    this.unsubscribe = await this.db.listen(
      TENANT_CHANGED_CHANNEL,
      (tenant) => this.invalidate(tenant),
      (live) => {
        this.live = live;
        this.clear();
      },
    );
  }

  async stop(): Promise<void> {
    const u = this.unsubscribe;
    this.unsubscribe = undefined;
    this.stopLocal?.();
    this.stopLocal = undefined;
    this.live = false;
    this.clear();
    await u?.();
  }

  async get(tenantIdentifier: string): Promise<TenantRecord | null> {
    const hit = this.live ? this.rows.get(tenantIdentifier) : undefined;
    if (hit && Date.now() - hit.at < this.maxAgeMs) {
      this.counts.hits++;
      // most recently used last
      this.rows.delete(tenantIdentifier);
      this.rows.set(tenantIdentifier, hit);
      return hit.row;
    }
    this.counts.misses++;
    const generation = this.generation;
    const at = Date.now();
    const row = await loadTenant(this.db, tenantIdentifier);
    if (row && this.live && generation === this.generation) {
      this.rows.delete(tenantIdentifier);
      this.rows.set(tenantIdentifier, { row: deepFreeze(row), at });
      if (this.rows.size > this.maxEntries) this.rows.delete(this.rows.keys().next().value!);
    }
    return row;
  }

  invalidate(tenantIdentifier: string): void {
    this.generation++;
    this.rows.delete(tenantIdentifier);
  }

  private clear(): void {
    this.generation++;
    this.rows.clear();
  }
}

/** Cached rows are shared by concurrent requests: nobody may change one in place. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}
