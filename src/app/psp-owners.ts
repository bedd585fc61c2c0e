/**
 * The tenant owning each PSP object (payment, refund, transfer, account id), as far as this instance has seen it:
 * filled when the instance stores a payment and when a webhook's attribution reads `psp_objects`. An object's owner
 * never changes (`psp_objects` rows are only ever inserted), so an entry never goes stale; only found owners are kept,
 * at most OWNERS_KEPT per database (the oldest go first). A webhook for a payment this instance created is then
 * attributed without a query.
 */
import type { AppDeps } from './context.js';

const OWNERS_KEPT = 20_000;
const ownersByDb = new WeakMap<object, Map<string, string>>();

const keyOf = (connector: string, pspObjectId: string): string => `${connector}\u0000${pspObjectId}`;

function ownersOf(deps: Pick<AppDeps, 'db'>): Map<string, string> {
  let m = ownersByDb.get(deps.db);
  if (!m) ownersByDb.set(deps.db, (m = new Map()));
  return m;
}

/** The owner this instance knows of, or undefined (then ask `psp_objects`). */
export function knownOwner(deps: Pick<AppDeps, 'db'>, connector: string, pspObjectId: string): string | undefined {
  return ownersOf(deps).get(keyOf(connector, pspObjectId));
}

/** Keeps an owner read from, or just written to, `psp_objects`. */
export function rememberOwner(deps: Pick<AppDeps, 'db'>, connector: string, pspObjectId: string, tenant: string): void {
  const m = ownersOf(deps);
  const key = keyOf(connector, pspObjectId);
  if (!m.has(key) && m.size >= OWNERS_KEPT) m.delete(m.keys().next().value!);
  m.set(key, tenant);
}
