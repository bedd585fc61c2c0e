/**
 * Read use cases of the console and the CLI: one payment's whole story, tenants with masked configuration.
 * Reads go through the repositories of `src/store/` only. PSP references are labelled with the connector's provider
 * name from the port (never the connector id); tenant secrets never leave this module unmasked.
 */
import { allSecretFields } from '../../connectors/registry.js';
import { auditOfPayment, type AuditEntry } from '../../store/audit-log.js';
import {
  commandsOfPayment,
  listTenants,
  merchantsOfTenant,
  messagesOfPayment,
  transfersOfTenant,
  webhooksOfPayment,
  type CommandItem,
  type MerchantItem,
  type OutboxItem,
  type TenantSummary,
  type TransferItem,
  type WebhookInboxItem,
} from '../../store/console-queries.js';
import { listOperations, listRefunds, type OperationRow, type RefundRow } from '../../store/operations.js';
import { findPaymentById, listHistory, type HistoryRow, type PaymentRow } from '../../store/payments.js';
import { decryptedSettings, maskedConfiguration, SECRET_MASK, type TenantRecord } from '../../store/tenants.js';
import { listOrderTransfers, type StoredTransfer } from '../../store/transfers.js';
import type { AppDeps } from '../context.js';

export interface PaymentStory {
  payment: PaymentRow;
  /** The PSP's name as the connector announces it (`providerName`), or null when its connector is not enabled here. */
  provider: string | null;
  history: HistoryRow[];
  operations: OperationRow[];
  refunds: RefundRow[];
  webhooks: WebhookInboxItem[];
  messages: OutboxItem[];
  commands: CommandItem[];
  audit: AuditEntry[];
  transfers: StoredTransfer[];
}

export function providerOf(deps: AppDeps, connectorId: string | null): string | null {
  return deps.connectors.get(connectorId ?? deps.config.connector)?.providerName ?? null;
}

export async function paymentStory(deps: AppDeps, paymentId: string): Promise<PaymentStory | null> {
  const payment = await findPaymentById(deps.db, paymentId);
  if (!payment) return null;
  const [history, operations, refunds, webhooks, messages, commands, audit, transfers] = await Promise.all([
    listHistory(deps.db, payment.id),
    listOperations(deps.db, payment.id),
    listRefunds(deps.db, payment.id),
    webhooksOfPayment(deps.db, payment),
    messagesOfPayment(deps.db, payment),
    commandsOfPayment(deps.db, payment),
    auditOfPayment(deps.db, payment.id),
    payment.orderReference ? listOrderTransfers(deps.db, payment.tenantIdentifier, payment.orderReference) : Promise.resolve([]),
  ]);
  return { payment, provider: providerOf(deps, payment.connector), history, operations, refunds, webhooks, messages, commands, audit, transfers };
}

export interface TenantView {
  id: string;
  status: TenantRecord['status'];
  isActive: boolean;
  provider: string | null;
  locale: string;
  /** Configuration with every secret value masked (the stored secret fields and every connector's secret fields). */
  configuration: Record<string, unknown>;
  methods: string[];
  lastWebhookAt: Date | null;
  payments: number;
  marketplace: boolean;
}

function masked(deps: AppDeps, row: TenantRecord): Record<string, unknown> {
  const out = maskedConfiguration(row);
  const connector = deps.connectors.get(row.connector ?? deps.config.connector);
  const secretIds = new Set([...allSecretFields(), ...(connector?.extraSecretFields ?? []), ...(connector?.settings.webhookSecretFields ?? [])]);
  for (const k of Object.keys(out)) if (secretIds.has(k) && out[k] !== undefined && out[k] !== null && out[k] !== '') out[k] = SECRET_MASK;
  return out;
}

function isMarketplace(deps: AppDeps, row: TenantRecord): boolean {
  const connector = deps.connectors.get(row.connector ?? deps.config.connector);
  if (!connector?.capabilities.onboarding) return false;
  try {
    return connector.settings.marketplace(decryptedSettings(deps.secrets, row));
  } catch {
    return false;
  }
}

function view(deps: AppDeps, s: TenantSummary): TenantView {
  const row = s.tenant;
  return {
    id: row.tenant_identifier,
    status: row.status,
    isActive: row.is_active,
    provider: providerOf(deps, row.connector),
    locale: row.locale,
    configuration: masked(deps, row),
    methods: (row.announced_methods ?? []).map((m) => m.name),
    lastWebhookAt: s.lastWebhookAt,
    payments: s.payments,
    marketplace: isMarketplace(deps, row),
  };
}

export async function tenantViews(deps: AppDeps): Promise<TenantView[]> {
  return (await listTenants(deps.db)).map((s) => view(deps, s));
}

export async function tenantDetail(deps: AppDeps, id: string): Promise<{ tenant: TenantView; merchants: MerchantItem[]; transfers: TransferItem[] } | null> {
  const s = (await listTenants(deps.db, id))[0];
  if (!s) return null;
  const tenant = view(deps, s);
  const [merchants, transfers] = await Promise.all([merchantsOfTenant(deps.db, id), transfersOfTenant(deps.db, id, 200)]);
  return { tenant, merchants, transfers };
}
