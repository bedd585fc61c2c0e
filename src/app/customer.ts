/**
 * Customer lookup (sync-api.md 4.8, flows.md 6 steps 5-6): the payer the PSP collected during an express checkout.
 * Read-only: nothing is stored, no message.
 */
import type { Payer, PayerAddress } from '../connectors/types.js';
import { AppError, paymentNotFound, validationError } from '../domain/errors.js';
import { findPaymentByTransaction } from '../store/payments.js';
import { decryptedSettings } from '../store/tenants.js';
import { isObject } from '../domain/input.js';
import { pspCall, requireObjectBody, transportError, type TenantLike } from './confirm-pre-order.js';
import type { AppDeps } from './context.js';

/** The `customer` object of sync-api.md 4.8 is exactly the connector's payer shape. */
export type CustomerAddress = PayerAddress;
export type Customer = Payer;

const s = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

/** Exactly the keys of 4.8 (no `locale`, `country`, `middleName`, `username`), missing values as null. */
function address(a: PayerAddress | null | undefined): CustomerAddress | null {
  if (!a) return null;
  return {
    salutation: s(a.salutation),
    firstName: s(a.firstName),
    lastName: s(a.lastName),
    address1: s(a.address1),
    address2: s(a.address2),
    address3: s(a.address3),
    zipCode: s(a.zipCode),
    city: s(a.city),
    state: s(a.state),
    region: s(a.region),
    iso2Code: typeof a.iso2Code === 'string' && a.iso2Code !== '' ? a.iso2Code.toUpperCase() : null,
    company: s(a.company),
    email: s(a.email),
    phone: s(a.phone),
    cellPhone: s(a.cellPhone),
  };
}

export function customerOf(p: Payer): Customer {
  return {
    salutation: s(p.salutation),
    firstName: s(p.firstName),
    lastName: s(p.lastName),
    email: s(p.email),
    phone: s(p.phone),
    company: s(p.company),
    gender: s(p.gender),
    dateOfBirth: s(p.dateOfBirth),
    billingAddress: address(p.billingAddress),
    shippingAddress: address(p.shippingAddress),
  };
}

const nonEmptyObject = (v: unknown): v is Record<string, unknown> => isObject(v) && Object.keys(v).length > 0;

export async function lookupCustomer(deps: AppDeps, tenant: TenantLike, body: unknown): Promise<{ isSuccessful: true; customer: Customer }> {
  const b = requireObjectBody(body);
  const data = b.customerPaymentServiceProviderData;
  const known = b.customer;
  if (data !== undefined && data !== null && !isObject(data) && !(Array.isArray(data) && data.length === 0)) {
    throw validationError('customerPaymentServiceProviderData', 'Field "customerPaymentServiceProviderData" must be an object.');
  }
  if (!nonEmptyObject(data) && !nonEmptyObject(known)) {
    throw new AppError('VALIDATION_FAILED', 'Either customer or customerPaymentServiceProviderData must be provided.', { field: 'customerPaymentServiceProviderData' });
  }
  const t = isObject(data) ? data.transactionId : undefined;
  if (typeof t !== 'string' || t.trim() === '') throw validationError('customerPaymentServiceProviderData.transactionId');
  const transactionId = t.trim();

  const unsupported = (): AppError => new AppError('UNSUPPORTED_OPERATION', 'Platform plugin does not provide Customer features');
  if (!deps.connectors.require(tenant.connector).capabilities.customer) throw unsupported();

  const payment = await findPaymentByTransaction(deps.db, tenant.tenant_identifier, transactionId);
  if (!payment) throw paymentNotFound(transactionId);

  const connector = deps.connectors.require(payment.connector);
  if (connector.capabilities.customer === 'client-supplied') {
    // The PSP has no server-side lookup: the storefront's own customer object is the answer.
    if (!nonEmptyObject(known)) throw new AppError('CONFLICT', 'The payment provider has no customer data for this payment yet.');
    return { isSuccessful: true, customer: customerOf(known as unknown as Payer) };
  }
  const capability = connector.capabilities.customer ? connector.customer : undefined;
  if (!capability) throw unsupported();
  const settings = decryptedSettings(deps.secrets, tenant);
  const clientData = isObject(data) ? data : {};
  const r = await pspCall((signal) => capability.getPayer(settings, payment.transactionId, clientData, signal));
  if (!r.ok) throw transportError(r.failure.kind === 'timeout' ? r.failure : { kind: 'error', message: 'customer lookup failed' });
  if (r.value === null) throw new AppError('CONFLICT', 'The payment provider has no customer data for this payment yet.');
  return { isSuccessful: true, customer: customerOf(r.value) };
}
