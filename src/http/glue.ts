/**
 * Glue-compatible storefront endpoints (sync-api.md 5): `POST /payments`, `/payment-cancellations`,
 * `/payment-customers`. JSON:API request and response shapes (`application/vnd.api+json`), 201 on success,
 * request validation as Spryker Glue reports it (422, code "901", detail `<field path> => <message>`, one entry per
 * violation), and business failures as 422 whose `code` names the real cause (sync-api.md 3.2: PAYMENT_NOT_FOUND,
 * CONFLICT, ILLEGAL_TRANSITION, PAYMENT_DECLINED, PSP_ERROR, ...). They run the use cases of 4.3/4.4, 4.6 and 4.8.
 * Authentication and tenant errors keep their section-2 status (401/400/403/404).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { cancelPreOrderPayment } from '../app/cancel-pre-order.js';
import type { AppDeps } from '../app/context.js';
import { lookupCustomer } from '../app/customer.js';
import { initializePayment, matchPaymentMethod } from '../app/initialize-payment.js';
import { AppError } from '../domain/errors.js';
import { type InputProblem, isObject, MAX_ARRAY_ITEMS } from '../domain/input.js';
import { isIso2Country, normalizeCurrency, parseMinorUnits } from '../domain/money.js';
import { customerSchema } from './pre-order.js';
import { requireActiveTenant, type TenantRow } from './tenant.js';

export const JSON_API = 'application/vnd.api+json';
const GLUE_VALIDATION_CODE = '901';

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

type Rule = 'notBlank' | 'numeric' | 'email' | 'country' | 'currency' | 'object';

const MESSAGES = {
  missing: 'This field is missing.',
  blank: 'This value should not be blank.',
  numeric: 'This value should be of type numeric.',
  email: 'This value is not a valid email address.',
  country: 'This value is not a valid country.',
  currency: 'This value is not a valid currency.',
  object: 'This value should be of type array.',
  nul: 'This value must not contain the character U+0000 or an unpaired surrogate.',
  tooMany: `This collection should contain ${MAX_ARRAY_ITEMS} elements or less.`,
};

function get(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const key of path.split('.')) {
    if (!isObject(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}

/** Spryker Glue's request validation: violations as `<path> => <message>`. Returns [] when valid. */
export function glueViolations(attributes: Record<string, unknown>, rules: Array<[string, Rule[]]>): string[] {
  const out: string[] = [];
  const missingParents = new Set<string>();
  for (const [path, checks] of rules) {
    const parent = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '';
    if (parent && [...missingParents].some((p) => parent === p || parent.startsWith(`${p}.`))) continue;
    const v = get(attributes, path);
    if (v === undefined) {
      out.push(`${path} => ${MESSAGES.missing}`);
      missingParents.add(path);
      continue;
    }
    // An empty object whose own fields have rules is not reported as blank: the deepest missing field is named instead.
    const hasFieldRules = rules.some(([p]) => p.startsWith(`${path}.`));
    const blank = v === null || v === '' || (typeof v === 'string' && v.trim() === '') || (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0 && !hasFieldRules);
    if (checks.includes('notBlank') && blank) {
      out.push(`${path} => ${MESSAGES.blank}`);
      missingParents.add(path);
      continue;
    }
    if (blank) continue;
    if (checks.includes('object') && !isObject(v)) {
      out.push(`${path} => ${MESSAGES.object}`);
      missingParents.add(path);
      continue;
    }
    if (checks.includes('numeric') && parseMinorUnits(v) === null) out.push(`${path} => ${MESSAGES.numeric}`);
    if (checks.includes('email') && (typeof v !== 'string' || !EMAIL.test(v))) out.push(`${path} => ${MESSAGES.email}`);
    if (checks.includes('country') && !isIso2Country(v)) out.push(`${path} => ${MESSAGES.country}`);
    if (checks.includes('currency') && normalizeCurrency(v) === null) out.push(`${path} => ${MESSAGES.currency}`);
  }
  return out;
}

function validationFailure(violations: string[]): AppError {
  const err = new AppError(GLUE_VALIDATION_CODE, violations[0]!, { status: 422 });
  for (const v of violations.slice(1)) err.entries.push({ code: GLUE_VALIDATION_CODE, status: 422, message: v });
  return err;
}

/** A request value refused by the input guard (src/domain/input.ts) as Glue reports a violation of its attributes. */
function glueInputError(problem: InputProblem, where: 'body' | 'query' | 'params'): AppError {
  if (where !== 'body' || problem.kind === 'depth') return new AppError('INVALID_REQUEST', problem.message);
  const path = problem.field.replace(/^data\.attributes\.?/, '') || problem.field || 'data';
  return validationFailure([`${path} => ${problem.kind === 'character' ? MESSAGES.nul : MESSAGES.tooMany}`]);
}

/** A use case's failure as Glue reports it: tenant/auth errors unchanged, everything else 422 with the real cause code. */
function asGlueFailure(err: unknown): unknown {
  if (!(err instanceof AppError)) return err;
  if (['TENANT_IDENTIFIER_MISSING', 'TENANT_NOT_FOUND', 'TENANT_DISCONNECTED', 'UNAUTHORIZED', 'INVALID_REQUEST', 'UNSUPPORTED_MEDIA_TYPE'].includes(String(err.code))) return err;
  if (err.status === 422) return err;
  const first = err.entries[0]!;
  return new AppError(first.code, first.message, { status: 422, ...(first.field ? { field: first.field } : {}) });
}

/** `{data: {type, attributes}}`: a missing type is accepted, another type answers 400 INVALID_REQUEST. */
function attributesOf(body: unknown, resource: string): Record<string, unknown> {
  if (!isObject(body) || !isObject(body.data)) throw new AppError('INVALID_REQUEST', 'The request body must be a JSON:API document {"data": {"type": ..., "attributes": {...}}}.');
  const type = body.data.type;
  if (type !== undefined && type !== null && type !== resource) throw new AppError('INVALID_REQUEST', `The resource type must be "${resource}".`);
  const attrs = body.data.attributes;
  if (attrs === undefined || attrs === null) return {};
  if (!isObject(attrs)) throw new AppError('INVALID_REQUEST', 'data.attributes must be an object.');
  return attrs;
}

/** The provider must be ours and the method one the tenant announced (5, common rules). */
function requireOurMethod(deps: AppDeps, tenant: TenantRow, attrs: Record<string, unknown>): void {
  const provider = String(get(attrs, 'payment.paymentProviderName') ?? '').trim();
  const method = String(get(attrs, 'payment.paymentMethodName') ?? '').trim();
  const providerName = deps.connectors.require(tenant.connector).providerName;
  const ours = provider.toLowerCase() === providerName.toLowerCase();
  if (!ours || matchPaymentMethod(method, tenant.announced_methods, providerName) === null) {
    throw new AppError('VALIDATION_FAILED', 'Payment method not found', { status: 422, field: ours ? 'payment.paymentMethodName' : 'payment.paymentProviderName' });
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** 5.1 mapping of the Glue `payments` attributes onto the initialize-payment request (orderData). */
export function orderDataFromGlue(attrs: Record<string, unknown>): Record<string, unknown> {
  const payment = isObject(attrs.payment) ? attrs.payment : {};
  const quote = isObject(attrs.quote) ? attrs.quote : {};
  const customer = isObject(quote.customer) ? quote.customer : {};
  const billing = isObject(quote.billingAddress) ? quote.billingAddress : {};
  const shipping = isObject(quote.shippingAddress) ? quote.shippingAddress : {};
  const od: Record<string, unknown> = {
    grandTotal: payment.amount,
    currencyCode: get(quote, 'currency.code'),
    paymentMethod: payment.paymentMethodName,
    customerFirstName: str(customer.firstName),
    customerLastName: str(customer.lastName),
    customerEmail: str(customer.email),
    salutation: str(customer.salutation) ?? str(billing.salutation),
    countryCode: str(billing.iso2Code),
    city: str(billing.city),
    state: str(billing.state),
    zip: str(billing.zipCode),
    address1: str(billing.address1),
    address2: str(billing.address2),
    address3: str(billing.address3),
    phone: str(billing.phone),
    shippingCountryCode: str(shipping.iso2Code),
    shippingFirstName: str(shipping.firstName),
    shippingLastName: str(shipping.lastName),
    shippingSalutation: str(shipping.salutation),
    shippingCity: str(shipping.city),
    shippingState: str(shipping.state),
    shippingZip: str(shipping.zipCode),
    shippingAddress1: str(shipping.address1),
    shippingAddress2: str(shipping.address2),
    shippingAddress3: str(shipping.address3),
    shippingPhone: str(shipping.phone),
    storeName: str(get(quote, 'store.name')),
    priceMode: str(quote.priceMode),
    customerReference: str(quote.customerReference),
    localeName: str(get(customer, 'locale.localeName')),
  };
  if (str(billing.firstName) && !od.customerFirstName) od.customerFirstName = billing.firstName;
  if (str(billing.lastName) && !od.customerLastName) od.customerLastName = billing.lastName;
  if (Array.isArray(quote.items)) {
    od.items = quote.items.filter(isObject).map((i) => {
      const item: Record<string, unknown> = {};
      if (i.sku !== undefined) item.sku = i.sku;
      if (i.name !== undefined) item.name = i.name;
      if (i.quantity !== undefined) item.quantity = i.quantity;
      const price = i.unitPrice ?? i.unitGrossPrice;
      if (price !== undefined && price !== null) item.unitPrice = price;
      if (i.idSalesOrderItem !== undefined) item.idSalesOrderItem = i.idSalesOrderItem;
      return item;
    });
  }
  if (isObject(payment.additionalPaymentData)) od.additionalPaymentData = payment.additionalPaymentData;
  for (const k of Object.keys(od)) if (od[k] === undefined) delete od[k];
  return od;
}

const PAYMENTS_RULES: Array<[string, Rule[]]> = [
  ['payment', ['notBlank', 'object']],
  ['payment.paymentProviderName', ['notBlank']],
  ['payment.paymentMethodName', ['notBlank']],
  ['payment.amount', ['notBlank', 'numeric']],
  ['quote', ['notBlank', 'object']],
  ['quote.customer', ['notBlank', 'object']],
  ['quote.customer.firstName', ['notBlank']],
  ['quote.customer.lastName', ['notBlank']],
  ['quote.customer.email', ['notBlank', 'email']],
  ['quote.billingAddress', ['notBlank', 'object']],
  ['quote.billingAddress.iso2Code', ['notBlank', 'country']],
  ['quote.currency', ['notBlank', 'object']],
  ['quote.currency.code', ['notBlank', 'currency']],
];
const PAYMENT_METHOD_RULES: Array<[string, Rule[]]> = [
  ['payment', ['notBlank', 'object']],
  ['payment.paymentProviderName', ['notBlank']],
  ['payment.paymentMethodName', ['notBlank']],
];
const CANCELLATION_RULES: Array<[string, Rule[]]> = [...PAYMENT_METHOD_RULES, ['preOrderPaymentData', ['notBlank', 'object']], ['preOrderPaymentData.transactionId', ['notBlank']]];
const CUSTOMER_RULES: Array<[string, Rule[]]> = [...PAYMENT_METHOD_RULES, ['customerPaymentServiceProviderData', ['notBlank', 'object']]];

function check(attrs: Record<string, unknown>, rules: Array<[string, Rule[]]>): void {
  const v = glueViolations(attrs, rules);
  if (v.length > 0) throw validationFailure(v);
}

/** Every answer of these routes, errors included, is `application/vnd.api+json`. */
async function jsonApiType(_req: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
  reply.header('content-type', JSON_API);
  return payload;
}

const errorBody = { type: 'object', description: 'Error body (sync-api.md 3) with JSON:API media type', additionalProperties: true } as const;
const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 415: errorBody, 422: errorBody };
/** Documentation only: the handler checks the shape itself so that Glue's 422 format applies. */
const resourceBody = (resource: string, attributes: string[]) =>
  ({
    type: 'object',
    description: `JSON:API document {"data": {"type": "${resource}", "attributes": {...}}}; attributes: ${attributes.join(', ')}`,
  }) as const;
const created = (attributes: Record<string, unknown>) => ({
  type: 'object',
  properties: {
    data: {
      type: 'object',
      properties: {
        type: { type: 'string' },
        id: { type: 'null' },
        attributes: { type: 'object', properties: attributes },
        links: { type: 'object', properties: { self: { type: 'string' } } },
      },
    },
  },
});
const anyObject = { type: 'object', additionalProperties: true } as const;

export async function glueRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const self = (resource: string): string => `${deps.config.appBaseUrl.replace(/\/+$/, '')}/${resource}`;
  const answer = (reply: FastifyReply, resource: string, attributes: Record<string, unknown>) =>
    reply.code(201).type(JSON_API).send({ data: { type: resource, id: null, attributes, links: { self: self(resource) } } });
  const common = { consumes: ['application/vnd.api+json', 'application/json'], tags: ['storefront'], security: [{ bearer: [] }] };

  app.route({
    method: 'POST',
    url: '/payments',
    onSend: jsonApiType,
    config: { inputError: glueInputError },
    schema: {
      ...common,
      summary: 'Glue-compatible pre-order payment initialization (headless and express checkout)',
      description: 'Runs initialize-payment in pre-order mode (4.3 / 4.4). Send preOrderPaymentData.transactionId again to update the amount of the same payment.',
      body: resourceBody('payments', ['payment', 'quote', 'preOrderPaymentData']),
      response: { 201: created({ isSuccessful: { type: 'boolean' }, error: { type: 'null' }, preOrderPaymentData: anyObject }), ...errors },
    },
    handler: async (req, reply) => {
      const tenant = await requireActiveTenant(req, deps.tenants);
      const attrs = attributesOf(req.body, 'payments');
      check(attrs, PAYMENTS_RULES);
      requireOurMethod(deps, tenant, attrs);
      const pod = attrs.preOrderPaymentData;
      const body = {
        orderData: orderDataFromGlue(attrs),
        preOrderPaymentData: isObject(pod) ? pod : {},
        ...(str(get(attrs, 'quote.customer.locale.localeName')) ? { localeName: get(attrs, 'quote.customer.locale.localeName') } : {}),
      };
      try {
        const r = await initializePayment(deps, tenant, body, req.id);
        return answer(reply, 'payments', { isSuccessful: true, error: null, preOrderPaymentData: r.preOrderPaymentData ?? { transactionId: r.transactionId } });
      } catch (err) {
        throw asGlueFailure(err);
      }
    },
  });

  app.route({
    method: 'POST',
    url: '/payment-cancellations',
    onSend: jsonApiType,
    config: { inputError: glueInputError },
    schema: {
      ...common,
      summary: 'Glue-compatible cancellation of a pre-order payment',
      description: 'Runs cancel-pre-order-payment (4.6).',
      body: resourceBody('payment-cancellations', ['payment', 'preOrderPaymentData']),
      response: { 201: created({ isSuccessful: { type: 'boolean' }, error: { type: 'null' }, preOrderPaymentData: anyObject }), ...errors },
    },
    handler: async (req, reply) => {
      const tenant = await requireActiveTenant(req, deps.tenants);
      const attrs = attributesOf(req.body, 'payment-cancellations');
      check(attrs, CANCELLATION_RULES);
      requireOurMethod(deps, tenant, attrs);
      try {
        await cancelPreOrderPayment(deps, tenant, { transactionId: get(attrs, 'preOrderPaymentData.transactionId') }, req.id);
        return answer(reply, 'payment-cancellations', { isSuccessful: true, error: null, preOrderPaymentData: {} });
      } catch (err) {
        throw asGlueFailure(err);
      }
    },
  });

  app.route({
    method: 'POST',
    url: '/payment-customers',
    onSend: jsonApiType,
    config: { inputError: glueInputError },
    schema: {
      ...common,
      summary: 'Glue-compatible express checkout customer lookup',
      description: 'Runs the customer lookup (4.8).',
      body: resourceBody('payment-customers', ['payment', 'customerPaymentServiceProviderData', 'customer']),
      response: { 201: created({ customer: customerSchema }), ...errors },
    },
    handler: async (req, reply) => {
      const tenant = await requireActiveTenant(req, deps.tenants);
      const attrs = attributesOf(req.body, 'payment-customers');
      check(attrs, CUSTOMER_RULES);
      requireOurMethod(deps, tenant, attrs);
      try {
        const r = await lookupCustomer(deps, tenant, { customerPaymentServiceProviderData: attrs.customerPaymentServiceProviderData, customer: attrs.customer });
        return answer(reply, 'payment-customers', { customer: r.customer });
      } catch (err) {
        throw asGlueFailure(err);
      }
    },
  });
}
