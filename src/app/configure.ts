/**
 * Use case: save a tenant's configuration (sync-api.md 4.1, flows.md 2, states.md 7, messages.md 5).
 *
 * Order: body shape (443) → tenant header (443) → form rules of the connector's configuration.json and the
 * connector's formats (444) → live credential check (444 refused / 443 unreachable) → one transaction:
 * merge, encrypt secrets, status/revision/locale, outbox (AppConfigUpdated, payment-method differences,
 * ReadyForMerchantAppOnboarding) → after commit the connector's best-effort `afterConfigured`.
 */
import type { Connector, PaymentMethodDefinition, TenantSettings } from '../connectors/types.js';
import { AppError } from '../domain/errors.js';
import { statusAfterConfigure, tenantTransition } from '../domain/tenant-status.js';
import { connectorMessage, t, type Locale } from '../i18n/messages.js';
import { enqueue, type Channel, type OutgoingMessage } from '../messaging/outbox.js';
import type { Queryable } from '../store/db.js';
import {
  insertTenantPlaceholder,
  decryptSecrets,
  loadTenant,
  maskedConfiguration,
  PREVIOUS_SECRET_TTL_MS,
  saveTenant,
  SECRET_MASK,
  type AnnouncedMethod,
  type TenantRecord,
} from '../store/tenants.js';
import type { AppDeps } from './context.js';
import { getCatalog, type ConfigurationForm, type FormField } from './catalog.js';

export const CONFIG_ORDERING_KEY = 'config';
const PSP_CHECK_TIMEOUT_MS = 15_000;

// ---------------------------------------------------------------------------------------------
// Messages shared with disconnect
// ---------------------------------------------------------------------------------------------

/** `Credit Card` → `credit-card`: lower-case, runs of spaces/underscores/dots (and dashes) → `-`. */
export function normaliseMethodName(name: string): string {
  return name
    .trim()
    .toLowerCase()
    .replace(/[\s_.-]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** messageChannels of AppConfigUpdated (messages.md 3.5). */
export function messageChannels(connector: Pick<Connector, 'capabilities'>): Channel[] {
  const channels: Channel[] = ['payment-method-commands', 'payment-events', 'payment-commands', 'app-events'];
  if (connector.capabilities.onboarding || connector.capabilities.transfers) channels.push('merchant-app-events');
  return channels;
}

export const PAYMENT_METHOD_ENDPOINTS: ReadonlyArray<{ name: string; path: string }> = Object.freeze([
  { name: 'authorization', path: '/private/initialize-payment' },
  { name: 'pre-order-payment', path: '/private/pre-order-payment' },
  { name: 'pre-order-confirmation', path: '/private/confirm-pre-order-payment' },
  { name: 'pre-order-cancellation', path: '/private/cancel-pre-order-payment' },
  { name: 'transfer', path: '/private/payments/transfers' },
  { name: 'customer', path: '/private/customer' },
]);

/** The AddPaymentMethod / UpdatePaymentMethod payload (messages.md 3.1). */
export function paymentMethodPayload(def: PaymentMethodDefinition, providerName: string, appBaseUrl: string): Record<string, unknown> {
  const baseUrl = appBaseUrl.replace(/\/+$/, '');
  const checkoutConfiguration: Record<string, unknown> = { strategy: def.strategy };
  if (def.scripts !== undefined) checkoutConfiguration.scripts = def.scripts;
  if (def.paymentServiceProviderData !== undefined) checkoutConfiguration.paymentServiceProviderData = def.paymentServiceProviderData;
  return {
    name: def.name,
    providerName,
    paymentAuthorizationEndpoint: `${baseUrl}${def.strategy === 'express-checkout' ? '/private/pre-order-payment' : '/private/initialize-payment'}`,
    paymentMethodAppConfiguration: {
      baseUrl,
      endpoints: PAYMENT_METHOD_ENDPOINTS.map((e) => ({ ...e })),
      checkoutConfiguration,
    },
  };
}

/** JSON with object keys sorted (comparison of announced payloads). */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined && o[k] !== null)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export const methodEventKey = (normalisedName: string, revision: number): string => `method/${normalisedName}/rev/${revision}`;

export function deletePaymentMethodMessage(tenant: string, m: AnnouncedMethod, providerName: string, revision: number, correlationId?: string): OutgoingMessage {
  return {
    tenantIdentifier: tenant,
    channel: 'payment-method-commands',
    name: 'DeletePaymentMethod',
    eventKey: methodEventKey(m.name, revision),
    orderingKey: CONFIG_ORDERING_KEY,
    payload: { name: (m.payload.name as string | undefined) ?? m.name, providerName: (m.payload.providerName as string | undefined) ?? providerName },
    correlationId,
  };
}

export function appConfigUpdatedMessage(deps: Pick<AppDeps, 'config' | 'connectors'>, row: TenantRecord, correlationId?: string): OutgoingMessage {
  const connector = deps.connectors.get(row.connector ?? deps.config.connector) ?? deps.connectors.default;
  return {
    tenantIdentifier: row.tenant_identifier,
    channel: 'app-events',
    name: 'AppConfigUpdated',
    eventKey: `config/rev/${row.revision}`,
    orderingKey: CONFIG_ORDERING_KEY,
    payload: {
      appIdentifier: deps.config.appIdentifier,
      status: row.status,
      isActive: row.is_active,
      config: maskedConfiguration(row),
      messageChannels: messageChannels(connector),
    },
    correlationId,
  };
}

/** Texts of the merchant statuses shown in the Merchant Portal (messages.md 3.6). */
export const MERCHANT_ONBOARDING_STATES: ReadonlyArray<{ name: string; attributes: Record<string, string> }> = Object.freeze([
  {
    name: 'pending',
    attributes: {
      statusText: 'Pending',
      displayText: 'Your onboarding with the payment provider is in progress or under review.',
      buttonText: 'Continue onboarding',
      buttonInfo: 'Finish the remaining steps at the payment provider.',
    },
  },
  {
    name: 'completed',
    attributes: {
      statusText: 'Completed',
      displayText: 'Your onboarding is complete and your account is connected.',
      buttonText: 'Review account',
      buttonInfo: 'Check your account details at the payment provider.',
    },
  },
  {
    name: 'enabled',
    attributes: {
      statusText: 'Enabled',
      displayText: 'Your account is fully enabled. You receive payouts.',
      buttonText: 'Review account',
      buttonInfo: 'Check your account details at the payment provider.',
    },
  },
  {
    name: 'restricted soon',
    attributes: {
      statusText: 'Restricted soon',
      displayText: 'The payment provider needs more information soon, otherwise payouts will be paused.',
      buttonText: 'Provide information',
      buttonInfo: 'Add the missing information at the payment provider.',
    },
  },
  {
    name: 'restricted',
    attributes: {
      statusText: 'Restricted',
      displayText: 'Payouts are paused until you provide the missing information.',
      buttonText: 'Provide information',
      buttonInfo: 'Add the missing information at the payment provider.',
    },
  },
  {
    name: 'rejected',
    attributes: {
      statusText: 'Rejected',
      displayText: 'Your account was rejected. Contact the marketplace operator.',
      buttonText: 'Contact support',
      buttonInfo: 'The marketplace operator can tell you more.',
    },
  },
]);

export function readyForMerchantOnboardingMessage(deps: Pick<AppDeps, 'config'>, connector: Pick<Connector, 'id'>, tenant: string, revision: number, correlationId?: string): OutgoingMessage {
  const appName = String(getCatalog(connector.id).manifests.en_US?.name ?? deps.config.appIdentifier);
  return {
    tenantIdentifier: tenant,
    channel: 'merchant-app-events',
    name: 'ReadyForMerchantAppOnboarding',
    eventKey: `onboarding/rev/${revision}`,
    orderingKey: CONFIG_ORDERING_KEY,
    payload: {
      onboarding: { url: `${deps.config.appBaseUrl.replace(/\/+$/, '')}/private/merchants/onboarding`, strategy: 'api' },
      type: 'payment',
      appName,
      appIdentifier: deps.config.appIdentifier,
      merchantOnboardingStates: MERCHANT_ONBOARDING_STATES.map((s) => ({ name: s.name, attributes: { ...s.attributes } })),
    },
    correlationId,
  };
}

// ---------------------------------------------------------------------------------------------
// Body and form validation
// ---------------------------------------------------------------------------------------------

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The submitted form values, or null when the body is not the JSON:API shape of 4.1. */
/** Marker the HTTP layer passes for a body that is not valid JSON (`position`: where JSON.parse stopped, if known). */
export class UnparseableBody {
  constructor(readonly position?: number) {}
}

const SHAPE = 'expected {"data":{"type":"configuration","attributes":{"configuration":"<the form values as a JSON string>"}}}';

const kindOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`);

/**
 * The configure body (4.1 step 1): `data.attributes.configuration`, a JSON object or a string of one. Answers the
 * form values, or `problem`: what was wrong and where (the 443 answer's `hint`; never echoes a value).
 */
export function readConfigureBody(body: unknown): { values: Record<string, unknown> } | { problem: string } {
  if (body instanceof UnparseableBody) {
    const at = body.position !== undefined ? ` at character ${body.position}` : '';
    return { problem: `The body is not valid JSON (parsing stopped${at}); ${SHAPE}.` };
  }
  if (body === undefined) return { problem: `The body is empty or not sent as Content-Type application/json; ${SHAPE}.` };
  if (!isPlainObject(body)) return { problem: `The body is ${kindOf(body)}, not a JSON object; ${SHAPE}.` };
  const data = body.data;
  if (!isPlainObject(data)) return { problem: data === undefined ? `"data" is missing; ${SHAPE}.` : `"data" is ${kindOf(data)}, not an object; ${SHAPE}.` };
  if (data.type !== undefined && data.type !== 'configuration') return { problem: `"data.type" must be "configuration" (or absent), got ${typeof data.type === 'string' ? JSON.stringify(data.type.slice(0, 40)) : kindOf(data.type)}.` };
  const attributes = data.attributes;
  if (!isPlainObject(attributes)) return { problem: attributes === undefined ? `"data.attributes" is missing; ${SHAPE}.` : `"data.attributes" is ${kindOf(attributes)}, not an object; ${SHAPE}.` };
  let configuration = attributes.configuration;
  if (configuration === undefined) return { problem: `"data.attributes.configuration" is missing; ${SHAPE}.` };
  if (typeof configuration === 'string') {
    try {
      configuration = JSON.parse(configuration);
    } catch (err) {
      const pos = /position (\d+)/.exec(String((err as Error).message))?.[1];
      return { problem: `"data.attributes.configuration" is a string but not valid JSON${pos ? ` (parsing stopped at character ${pos})` : ''}; it must be a JSON object serialised to a string, e.g. "{\\"secretKey\\":\\"sk_...\\"}".` };
    }
    if (!isPlainObject(configuration)) return { problem: `"data.attributes.configuration" is a string of JSON ${kindOf(configuration)}, not of a JSON object.` };
  }
  if (!isPlainObject(configuration)) return { problem: `"data.attributes.configuration" is ${kindOf(configuration)}; expected a JSON object or a string of one.` };
  return { values: configuration };
}

export function parseConfigureBody(body: unknown): Record<string, unknown> | null {
  const r = readConfigureBody(body);
  return 'values' in r ? r.values : null;
}

export function secretFieldsOf(form: ConfigurationForm, connector: Pick<Connector, 'extraSecretFields'>): Set<string> {
  return new Set([...form.fields.filter((f) => f.password).map((f) => f.id), ...(connector.extraSecretFields ?? [])]);
}

const isEmpty = (v: unknown): boolean => v === undefined || v === null || (typeof v === 'string' && v.trim() === '') || (Array.isArray(v) && v.length === 0);

/** Type/enum problem of one value (message key + params) or null. */
function valueProblem(field: FormField, value: unknown, locale: Locale): string | null {
  const type = field.type ?? 'string';
  if (type === 'string') {
    if (field.multiple) {
      if (!Array.isArray(value) || !value.every((x) => typeof x === 'string')) return t(locale, 'field_type_string_array');
    } else if (typeof value !== 'string') return t(locale, 'field_type_string');
  } else if (type === 'boolean') {
    if (typeof value !== 'boolean') return t(locale, 'field_type_boolean');
  } else if (type === 'number') {
    if (typeof value !== 'number' || !Number.isFinite(value)) return t(locale, 'field_type_number');
  } else if (type === 'object') {
    if (!isPlainObject(value)) return t(locale, 'field_type_object');
  } else if (type === 'array') {
    if (!Array.isArray(value) || !value.every(isPlainObject)) return t(locale, 'field_type_array');
    if (field.items) {
      for (let i = 0; i < value.length; i++) {
        const item = value[i] as Record<string, unknown>;
        for (const sub of field.items) {
          if (sub.displayOnly) continue;
          const v = item[sub.id];
          const problem = isEmpty(v) ? (sub.required ? t(locale, 'field_required') : null) : valueProblem(sub, v, locale);
          if (problem) return t(locale, 'field_invalid_entry', { index: i + 1, message: `${sub.id}: ${problem}` });
        }
      }
    }
  }
  if (field.allowed && field.allowed.length > 0 && (field.widget === 'radio' || field.widget === 'select' || field.widget === undefined)) {
    const values = Array.isArray(value) ? value : [value];
    if (!values.every((v) => field.allowed!.includes(v))) return t(locale, 'field_enum', { values: field.allowed.map(String).join(', ') });
  }
  return null;
}

export interface MergeResult {
  /** Merged settings (secrets in plaintext), keyed by field id; only form fields. */
  values: TenantSettings;
  /** field id → localized message. */
  errors: Record<string, string>;
}

/**
 * Merges the submitted values into the stored settings (catalog.md 4.2): sent keys overwrite, secrets sent as
 * "" or the mask keep their stored value, `null` clears a value, defaults fill what is absent in both,
 * display-only widgets, unknown keys and `isActive` are ignored. Then checks required fields and types.
 */
export function mergeAndValidate(
  form: ConfigurationForm,
  secretFields: ReadonlySet<string>,
  stored: TenantSettings,
  sent: Record<string, unknown>,
  locale: Locale,
): MergeResult {
  const values: TenantSettings = {};
  const errors: Record<string, string> = {};
  for (const field of form.fields) {
    const id = field.id;
    if (id === 'isActive') continue;
    const has = Object.prototype.hasOwnProperty.call(sent, id);
    const raw = has ? sent[id] : undefined;
    let value: unknown = stored[id];
    if (has) {
      if (secretFields.has(id)) {
        if (raw === null || raw === '' || raw === SECRET_MASK) {
          /* keep stored */
        } else value = raw;
      } else value = raw === null ? undefined : raw;
    }
    if (value === undefined && field.default !== undefined) value = structuredClone(field.default);
    if (value !== undefined && value !== null) values[id] = value;
    if (isEmpty(value)) {
      if (field.required) errors[id] = t(locale, 'field_required');
      continue;
    }
    const problem = valueProblem(field, value, locale);
    if (problem) errors[id] = problem;
  }
  return { values, errors };
}

function formError(errors: Record<string, string>): AppError {
  return new AppError(444, JSON.stringify(errors), { status: 400 });
}

/** 443 "Wrong request format." (Spryker's code and text; `detail` the same text, sync-api.md 3) with a `hint` naming what was wrong and where. */
const wrongFormat = (locale: Locale, hint: string): AppError => new AppError(443, t(locale, 'wrong_request_format'), { status: 400, hint });

// ---------------------------------------------------------------------------------------------
// The use case
// ---------------------------------------------------------------------------------------------

export interface ConfigureInput {
  tenantIdentifier: string | undefined;
  body: unknown;
  locale: Locale;
  requestId?: string;
}

export interface ConfigureResult {
  tenantIdentifier: string;
  configuration: Record<string, unknown>;
}

function splitSettings(values: TenantSettings, secretFields: ReadonlySet<string>): { config: Record<string, unknown>; secrets: Record<string, string> } {
  const config: Record<string, unknown> = {};
  const secrets: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) {
    if (secretFields.has(k)) {
      if (typeof v === 'string' && v !== '') secrets[k] = v;
    } else config[k] = v;
  }
  return { config, secrets };
}

async function storedSettings(deps: AppDeps, row: TenantRecord | null): Promise<TenantSettings> {
  if (!row) return {};
  return { ...row.config, ...decryptSecrets(deps.secrets, row) };
}

export async function configureTenant(deps: AppDeps, input: ConfigureInput): Promise<ConfigureResult> {
  const { locale } = input;
  const read = readConfigureBody(input.body);
  if ('problem' in read) throw wrongFormat(locale, read.problem);
  const sent = read.values;
  const tenant = input.tenantIdentifier;
  if (tenant === undefined) throw new AppError(443, t(locale, 'tenant_identifier_required'), { status: 400 });

  // A configure always uses the deployment's connector (`CONNECTOR`, whose form the catalog serves); a tenant of a
  // previous connector moves to it (its payments stay with the connector they were made with).
  const connector = deps.connectors.default;
  const form = getCatalog(connector.id).form;
  const secretFields = secretFieldsOf(form, connector);

  // Validation against the currently stored configuration (no transaction: the PSP check comes next).
  const before = await loadTenant(deps.db, tenant);
  const merged = mergeAndValidate(form, secretFields, await storedSettings(deps, before), sent, locale);
  const errors = { ...merged.errors };
  let formats: Record<string, string> = {};
  try {
    formats = connector.validateFormats(merged.values) ?? {};
  } catch (err) {
    // Fail closed: a configuration the connector could not check is not stored.
    deps.log.error({ err: err instanceof Error ? err.message : String(err), tenantIdentifier: tenant, connector: connector.id }, 'connector validateFormats failed; configuration refused');
    throw new AppError(443, `Internal error. Reference: ${input.requestId ?? 'unknown'}`, { status: 500 });
  }
  for (const [field, key] of Object.entries(formats)) if (!(field in errors)) errors[field] = connectorMessage(locale, key, 'field_format');
  if (Object.keys(errors).length > 0) {
    // ordered as the form lists its fields
    const ordered: Record<string, string> = {};
    for (const f of form.fields) if (f.id in errors) ordered[f.id] = errors[f.id]!;
    for (const [k, v] of Object.entries(errors)) if (!(k in ordered)) ordered[k] = v;
    throw formError(ordered);
  }

  // Live credential check (outside any transaction, 15 s budget).
  const check = await connector
    .checkCredentials(merged.values, AbortSignal.timeout(PSP_CHECK_TIMEOUT_MS))
    .catch((err: unknown) => {
      deps.log.warn({ err: err instanceof Error ? err.message : String(err), tenantIdentifier: tenant }, 'credential check failed');
      return { ok: false as const, kind: 'unreachable' as const };
    });
  if (!check.ok) {
    if (check.kind === 'refused') throw formError({ [check.field]: connectorMessage(locale, check.message, 'credentials_refused') });
    throw new AppError(443, t(locale, 'psp_unreachable'), { status: 400 });
  }

  // The connector's registration at the PSP (e.g. the webhook endpoint). Best effort; what it returns (PSP-generated
  // webhook secret, endpoint ids) is stored with the configuration (P3), secrets encrypted like typed ones.
  let patch: TenantSettings = {};
  try {
    const r = await connector.afterConfigured(
      merged.values,
      { tenantIdentifier: tenant, appBaseUrl: deps.config.appBaseUrl, appIdentifier: deps.config.appIdentifier },
      AbortSignal.timeout(PSP_CHECK_TIMEOUT_MS),
    );
    patch = (r && r.settingsPatch) || {};
  } catch (err) {
    deps.log.warn({ tenantIdentifier: tenant, err: err instanceof Error ? err.message : String(err) }, 'connector afterConfigured failed (the configuration is saved)');
  }

  const now = new Date();
  const saveConfiguration = (): Promise<{ row: TenantRecord; values: TenantSettings }> =>
    deps.db.tx(async (tx) => {
    let current = await loadTenant(tx, tenant, { forUpdate: true });
    if (!current) {
      // First configure: claim the row so a concurrent first configure waits for this one (revision 0 = not yet configured).
      await insertTenantPlaceholder(tx, tenant);
      const locked = await loadTenant(tx, tenant, { forUpdate: true });
      current = locked && locked.revision > 0 ? locked : null;
    }
    // Re-merge against the locked row (a concurrent configure may have committed since validation).
    const values = {
      ...(current && before && current.revision === before.revision ? merged.values : mergeAndValidate(form, secretFields, await storedSettings(deps, current), sent, locale).values),
      ...patch,
    };
    const { config, secrets: plainSecrets } = splitSettings(values, secretFields);

    // Secrets: keep unchanged ciphertexts, encrypt new values; a replaced webhook secret stays valid 24 h.
    const oldPlain = current ? decryptSecrets(deps.secrets, current) : {};
    const secrets: Record<string, string> = {};
    const previous = { ...(current?.previous_secrets ?? {}) };
    for (const [k, v] of Object.entries(previous)) if (Date.parse(v.until) <= now.getTime()) delete previous[k];
    const webhookFields = new Set(connector.settings.webhookSecretFields);
    for (const [field, value] of Object.entries(plainSecrets)) {
      if (current && oldPlain[field] === value && current.secrets[field]) secrets[field] = current.secrets[field]!;
      else {
        secrets[field] = deps.secrets.encrypt(value);
        if (webhookFields.has(field) && current?.secrets[field]) {
          previous[field] = { value: current.secrets[field]!, until: new Date(now.getTime() + PREVIOUS_SECRET_TTL_MS).toISOString() };
        }
      }
    }

    const from = current?.status ?? null;
    const to = statusAfterConfigure(from);
    const transition = tenantTransition(from, to, 'configure');
    if (!transition.ok) throw new Error(transition.error.message);

    const row: TenantRecord = {
      tenant_identifier: tenant,
      status: to,
      is_active: true,
      revision: (current?.revision ?? 0) + 1,
      config,
      secrets,
      previous_secrets: previous,
      locale,
      announced_methods: [],
      connector: connector.id,
    };

    // Payment methods: differences against what was last announced.
    const announced = current?.announced_methods ?? [];
    const defs = connector.paymentMethods(values);
    const methodMessages: OutgoingMessage[] = [];
    const nextAnnounced: AnnouncedMethod[] = [];
    const seen = new Set<string>();
    for (const def of defs) {
      const name = normaliseMethodName(def.name);
      if (seen.has(name)) continue;
      seen.add(name);
      const payload = paymentMethodPayload(def, connector.providerName, deps.config.appBaseUrl);
      nextAnnounced.push({ name, payload });
      const prior = announced.find((a) => a.name === name);
      if (prior && canonicalJson(prior.payload) === canonicalJson(payload)) continue;
      methodMessages.push({
        tenantIdentifier: tenant,
        channel: 'payment-method-commands',
        name: prior ? 'UpdatePaymentMethod' : 'AddPaymentMethod',
        eventKey: methodEventKey(name, row.revision),
        orderingKey: CONFIG_ORDERING_KEY,
        payload,
        correlationId: input.requestId,
      });
    }
    for (const a of announced) {
      if (!seen.has(a.name)) methodMessages.push(deletePaymentMethodMessage(tenant, a, connector.providerName, row.revision, input.requestId));
    }
    row.announced_methods = nextAnnounced;

    const messages: OutgoingMessage[] = [appConfigUpdatedMessage(deps, row, input.requestId), ...methodMessages];
    if (connector.capabilities.onboarding && connector.settings.marketplace(values)) {
      messages.push(readyForMerchantOnboardingMessage(deps, connector, tenant, row.revision, input.requestId));
    }

    await saveTenant(tx, row);
    await enqueue(tx, deps.config.appIdentifier, messages);
    return { row, values };
    });

  const saved = await saveConfiguration().catch((err: unknown) => {
    if (err instanceof AppError) throw err;
    deps.log.error({ err, tenantIdentifier: tenant }, 'saving the configuration failed');
    throw new AppError(443, `Internal error. Reference: ${input.requestId ?? 'unknown'}`, { status: 500 });
  });

  return { tenantIdentifier: tenant, configuration: maskedConfiguration(saved.row) };
}

/** Tenant configuration as stored (masked), for read-only callers. */
export async function maskedTenantConfiguration(q: Queryable, tenant: string): Promise<Record<string, unknown> | null> {
  const row = await loadTenant(q, tenant);
  return row ? maskedConfiguration(row) : null;
}
