/**
 * Tenant repository: rows of `tenants` (migrations/001_core.sql).
 *
 * - Non-secret configuration values live in `config` (jsonb), secret values (password fields and the
 *   connector's extra secret fields) in `secrets` as AES-256-GCM ciphertexts `<keyId>:<iv>:<tag>:<ct>`
 *   (src/store/secret-box.ts), one per field. Plaintext secrets never reach the database.
 * - `previous_secrets` keeps the ciphertext of a replaced webhook secret with its expiry (`until`, ISO),
 *   so webhooks signed with the old secret still verify for 24 h (flows.md 2).
 * - `announced_methods` is the list of payment methods last announced to the shop (messages.md 3.1).
 *
 * Use `decryptedSettings(box, row)` to get what a connector needs, and `webhookSecrets(box, row, now)` to
 * verify webhooks. `TenantRepository` bundles them with a SecretBox.
 */
import type { Db, Queryable, Tx } from './db.js';
import type { SecretBox } from './secret-box.js';

export type TenantStatusValue = 'NEW' | 'CONNECTED' | 'DISCONNECTED';

export interface AnnouncedMethod {
  /** Normalised method name (`credit-card`). */
  name: string;
  /** The payload last announced (AddPaymentMethod / UpdatePaymentMethod). */
  payload: Record<string, unknown>;
}

export interface PreviousSecret {
  value: string;
  until: string;
}

/** One `tenants` row (same shape as TenantRow of src/http/tenant.ts). */
export interface TenantRecord {
  tenant_identifier: string;
  status: TenantStatusValue;
  is_active: boolean;
  revision: number;
  config: Record<string, unknown>;
  secrets: Record<string, string>;
  previous_secrets: Record<string, PreviousSecret>;
  locale: string;
  announced_methods: AnnouncedMethod[];
  /** The connector the tenant was configured with (null on rows written before connectors were recorded: the default). */
  connector: string | null;
}

export const SECRET_MASK = '********';
/** How long a replaced webhook secret keeps verifying webhooks (flows.md 2). */
export const PREVIOUS_SECRET_TTL_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_WEBHOOK_SECRET_FIELD = 'webhookSecret';

const COLUMNS = 'tenant_identifier, status, is_active, revision, config, secrets, previous_secrets, locale, announced_methods, connector';

function normalise(row: TenantRecord): TenantRecord {
  return {
    tenant_identifier: row.tenant_identifier,
    status: row.status,
    is_active: row.is_active,
    revision: Number(row.revision),
    config: row.config ?? {},
    secrets: row.secrets ?? {},
    previous_secrets: row.previous_secrets ?? {},
    locale: row.locale,
    announced_methods: row.announced_methods ?? [],
    connector: row.connector ?? null,
  };
}

/** The tenant's row or null. `forUpdate` locks it (only inside a transaction). */
export async function loadTenant(q: Queryable, tenantIdentifier: string, opts: { forUpdate?: boolean } = {}): Promise<TenantRecord | null> {
  const r = await q.query<TenantRecord>(`SELECT ${COLUMNS} FROM tenants WHERE tenant_identifier = $1${opts.forUpdate ? ' FOR UPDATE' : ''}`, [tenantIdentifier]);
  return r.rows[0] ? normalise(r.rows[0]) : null;
}

/** Inserts a placeholder row (`NEW`, inactive, revision 0) unless the tenant has one: a first configure claims the row to lock it. */
export async function insertTenantPlaceholder(tx: Tx, tenantIdentifier: string): Promise<void> {
  await tx.query(`INSERT INTO tenants (tenant_identifier, status, is_active, revision) VALUES ($1, 'NEW', false, 0) ON CONFLICT (tenant_identifier) DO NOTHING`, [tenantIdentifier]);
}

/** Called with the tenant identifier right after a change made through this module is committed (the tenant cache listens). */
const savedListeners = new Set<(tenantIdentifier: string) => void>();
export function onTenantSaved(listener: (tenantIdentifier: string) => void): () => void {
  savedListeners.add(listener);
  return () => savedListeners.delete(listener);
}
function announceSaved(q: Queryable, tenantIdentifier: string): void {
  const announce = (): void => {
    for (const l of savedListeners) l(tenantIdentifier);
  };
  if ('afterCommit' in q && typeof (q as Tx).afterCommit === 'function') (q as Tx).afterCommit(announce);
  else announce();
}

/** Inserts or updates the whole row (call inside the transaction that wrote its messages). */
export async function saveTenant(q: Queryable, row: TenantRecord): Promise<void> {
  announceSaved(q, row.tenant_identifier);
  await q.query(
    `INSERT INTO tenants (${COLUMNS}, updated_at)
     VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8, $9::jsonb, $10, now())
     ON CONFLICT (tenant_identifier) DO UPDATE SET
       status = EXCLUDED.status, is_active = EXCLUDED.is_active, revision = EXCLUDED.revision,
       config = EXCLUDED.config, secrets = EXCLUDED.secrets, previous_secrets = EXCLUDED.previous_secrets,
       locale = EXCLUDED.locale, announced_methods = EXCLUDED.announced_methods,
       connector = COALESCE(EXCLUDED.connector, tenants.connector), updated_at = now()`,
    [
      row.tenant_identifier,
      row.status,
      row.is_active,
      row.revision,
      JSON.stringify(row.config),
      JSON.stringify(row.secrets),
      JSON.stringify(row.previous_secrets),
      row.locale,
      JSON.stringify(row.announced_methods),
      row.connector,
    ],
  );
}

/** Rows written before tenants recorded their connector belong to the deployment's connector at upgrade time. */
export async function backfillTenantConnector(q: Queryable, connector: string): Promise<void> {
  await q.query('UPDATE tenants SET connector = $1 WHERE connector IS NULL', [connector]);
}

/** Encrypts every value under the first key of the ring. */
export function encryptSecrets(box: SecretBox, plain: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, value] of Object.entries(plain)) out[field] = box.encrypt(value);
  return out;
}

/** Decrypts every stored secret of the row (throws if a key id is not in the ring). */
export function decryptSecrets(box: SecretBox, row: Pick<TenantRecord, 'secrets'>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, sealed] of Object.entries(row.secrets ?? {})) out[field] = box.decryptFor(tenantOf(row), sealed);
  return out;
}

/** The tenant a row belongs to, when the row says (names the tenant in decryption failures and /ready). */
function tenantOf(row: object): string | undefined {
  const r = row as { tenant_identifier?: unknown; tenantIdentifier?: unknown };
  const t = r.tenant_identifier ?? r.tenantIdentifier;
  return typeof t === 'string' ? t : undefined;
}

/** The tenant's settings as the connector sees them: non-secret values merged with the decrypted secrets. */
export function decryptedSettings(box: SecretBox, row: Pick<TenantRecord, 'config' | 'secrets'>): Record<string, unknown> {
  // A row read once (the tenant cache hands out the same object) is decrypted once per key ring.
  return { ...perRowAndBox(decrypted, row, box, () => ({ ...(row.config ?? {}), ...decryptSecrets(box, row) })) };
}

/**
 * What `make` derives from a row with a key ring, kept per row object and key ring (rows are never changed in place: a
 * change is a new row, read again).
 */
function perRowAndBox<T>(memo: WeakMap<object, WeakMap<SecretBox, T>>, row: object, box: SecretBox, make: () => T): T {
  let byBox = memo.get(row);
  if (!byBox) memo.set(row, (byBox = new WeakMap()));
  let value = byBox.get(box);
  if (value === undefined) byBox.set(box, (value = make()));
  return value;
}

/** Decrypted settings per row object and key ring. */
const decrypted = new WeakMap<object, WeakMap<SecretBox, Record<string, unknown>>>();

/**
 * Current webhook secrets of the given fields (the connector's `settings.webhookSecretFields`), plus the previous ones
 * while still valid (flows.md 2). Empty if none is stored.
 */
export function webhookSecrets(
  box: SecretBox,
  row: Pick<TenantRecord, 'secrets' | 'previous_secrets'>,
  now: Date = new Date(),
  fields: readonly string[] = [DEFAULT_WEBHOOK_SECRET_FIELD],
): string[] {
  const out: string[] = [];
  for (const field of fields) {
    const current = row.secrets?.[field];
    if (current) out.push(decryptedOnce(box, row, current));
    const prev = row.previous_secrets?.[field];
    if (prev && Date.parse(prev.until) > now.getTime()) {
      const value = decryptedOnce(box, row, prev.value);
      if (!out.includes(value)) out.push(value);
    }
  }
  return out;
}

/** Decrypted secret values per row object and key ring, by their stored (encrypted) value: each decrypted once. */
const decryptedSecrets = new WeakMap<object, WeakMap<SecretBox, Map<string, string>>>();

function decryptedOnce(box: SecretBox, row: Pick<TenantRecord, 'secrets' | 'previous_secrets'>, stored: string): string {
  const values = perRowAndBox(decryptedSecrets, row, box, () => new Map<string, string>());
  let value = values.get(stored);
  if (value === undefined) values.set(stored, (value = box.decryptFor(tenantOf(row), stored)));
  return value;
}

/** The configuration as shown in responses and `AppConfigUpdated`: secrets masked, `isActive` added. */
export function maskedConfiguration(row: Pick<TenantRecord, 'config' | 'secrets' | 'is_active'>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(row.config ?? {}) };
  for (const field of Object.keys(row.secrets ?? {})) out[field] = SECRET_MASK;
  out.isActive = row.is_active;
  return out;
}

export interface RotationReport {
  tenants: number;
  reencrypted: number;
  alreadyCurrent: number;
}

/**
 * Re-encrypts every stored secret (`secrets` and `previous_secrets`) under the first key of the ring.
 * One transaction per tenant, row locked; values already under the current key are left as they are.
 */
export async function rotateTenantSecrets(
  db: Pick<Db, 'query' | 'tx'>,
  box: SecretBox,
): Promise<RotationReport> {
  const report: RotationReport = { tenants: 0, reencrypted: 0, alreadyCurrent: 0 };
  const ids = (await db.query<{ tenant_identifier: string }>('SELECT tenant_identifier FROM tenants ORDER BY tenant_identifier')).rows.map((r) => r.tenant_identifier);
  for (const id of ids) {
    await db.tx(async (tx) => {
      const row = await loadTenant(tx, id, { forUpdate: true });
      if (!row) return;
      report.tenants++;
      let changed = false;
      const reseal = (sealed: string): string => {
        if (box.keyIdOf(sealed) === box.currentKeyId) {
          report.alreadyCurrent++;
          return sealed;
        }
        changed = true;
        report.reencrypted++;
        return box.encrypt(box.decrypt(sealed));
      };
      const secrets: Record<string, string> = {};
      for (const [f, v] of Object.entries(row.secrets)) secrets[f] = reseal(v);
      const previous: Record<string, PreviousSecret> = {};
      for (const [f, v] of Object.entries(row.previous_secrets)) previous[f] = { ...v, value: reseal(v.value) };
      if (changed) {
        announceSaved(tx, id);
        await tx.query('UPDATE tenants SET secrets = $2::jsonb, previous_secrets = $3::jsonb, updated_at = now() WHERE tenant_identifier = $1', [
          id,
          JSON.stringify(secrets),
          JSON.stringify(previous),
        ]);
      }
    });
  }
  return report;
}

/** The repository bound to one key ring, for use cases that only need reads and decryption. */
export class TenantRepository {
  constructor(
    readonly box: SecretBox,
    readonly webhookSecretFields: readonly string[] = [DEFAULT_WEBHOOK_SECRET_FIELD],
  ) {}

  load(q: Queryable, tenantIdentifier: string, opts: { forUpdate?: boolean } = {}): Promise<TenantRecord | null> {
    return loadTenant(q, tenantIdentifier, opts);
  }

  save(q: Queryable, row: TenantRecord): Promise<void> {
    return saveTenant(q, row);
  }

  decryptedSettings(row: Pick<TenantRecord, 'config' | 'secrets'>): Record<string, unknown> {
    return decryptedSettings(this.box, row);
  }

  webhookSecrets(row: Pick<TenantRecord, 'secrets' | 'previous_secrets'>, now: Date = new Date()): string[] {
    return webhookSecrets(this.box, row, now, this.webhookSecretFields);
  }

  masked(row: Pick<TenantRecord, 'config' | 'secrets' | 'is_active'>): Record<string, unknown> {
    return maskedConfiguration(row);
  }
}
