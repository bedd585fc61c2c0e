/**
 * `POST /private/confirm-pre-order-payment` (alias `/confirm-pre-order-payment`, sync-api.md 4.5),
 * `POST /private/cancel-pre-order-payment` (alias `/cancel-pre-order-payment`, 4.6) and `POST /private/customer` (4.8).
 * JSON bodies only. Every error body carries `isSuccessful: false` and `message` besides the section-3 keys.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { cancelPreOrderPayment } from '../app/cancel-pre-order.js';
import { confirmPreOrderPayment } from '../app/confirm-pre-order.js';
import type { AppDeps } from '../app/context.js';
import { lookupCustomer } from '../app/customer.js';
import { failureKeys } from './errors.js';
import { requireActiveTenant } from './tenant.js';



const errorBody = { type: 'object', description: 'Error body (sync-api.md 3) plus isSuccessful: false and message', additionalProperties: true } as const;
const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody, 415: errorBody, 422: errorBody, 502: errorBody, 504: errorBody };
const ok = { type: 'object', properties: { isSuccessful: { type: 'boolean' }, message: { type: ['string', 'null'] } } } as const;
const headers = {
  type: 'object',
  properties: {
    'x-tenant-identifier': { type: 'string', description: 'The tenant (fallback: X-Store-Reference)' },
    'x-store-reference': { type: 'string', description: 'Legacy tenant header' },
  },
} as const;

const address = {
  type: ['object', 'null'],
  properties: Object.fromEntries(
    ['salutation', 'firstName', 'lastName', 'address1', 'address2', 'address3', 'zipCode', 'city', 'state', 'region', 'iso2Code', 'company', 'email', 'phone', 'cellPhone'].map((k) => [
      k,
      { type: ['string', 'null'] },
    ]),
  ),
} as const;
export const customerSchema = {
  type: 'object',
  properties: {
    ...Object.fromEntries(['salutation', 'firstName', 'lastName', 'email', 'phone', 'company', 'gender', 'dateOfBirth'].map((k) => [k, { type: ['string', 'null'] }])),
    billingAddress: address,
    shippingAddress: address,
  },
} as const;

const confirmSchema = {
  summary: 'Confirm a pre-order payment: link it to the saved order and report the authorization outcome',
  description:
    'Takes the transaction id from top-level transactionId, else preOrderPaymentData.transactionId. Repeating the call for the same order answers the same result. ' +
    'A changed total is sent to the PSP first; if the PSP refuses (e.g. the express payment is already authorized), 409 CONFLICT and nothing is linked. ' +
    'A declined payment answers 422 PAYMENT_DECLINED with the link stored; an unreachable PSP leaves the payment new and linked and answers 200.',
  tags: ['payments'],
  security: [{ bearer: [] }],
  headers,
  body: {
    type: 'object',
    properties: {
      orderReference: { description: 'The saved order' },
      orderData: { description: 'The quote with orderReference, grandTotal, currencyCode and items[].idSalesOrderItem' },
      preOrderPaymentData: { description: 'What the storefront replayed (transactionId)' },
      transactionId: { description: 'Top-level transaction id (wins over preOrderPaymentData.transactionId)' },
      localeName: { description: 'Shopper locale' },
    },
  },
  response: { 200: ok, ...errors },
} as const;

const cancelSchema = {
  summary: 'Cancel a pre-order payment that is not linked to an order',
  description: 'Already canceled: 200 without change. Linked to an order: 409. PSP refuses because captured: 409; other refusal / error / timeout: 422 / 502 / 504, status unchanged.',
  tags: ['payments'],
  security: [{ bearer: [] }],
  headers,
  body: {
    type: 'object',
    properties: {
      preOrderPaymentData: { description: 'Contains transactionId' },
      transactionId: { description: 'Top-level transaction id (preferred)' },
    },
  },
  response: { 200: ok, ...errors },
} as const;

const customerRouteSchema = {
  summary: 'The payer the PSP collected during an express checkout',
  description: 'Read-only. customerPaymentServiceProviderData must contain transactionId. 409 when the PSP has no payer for the payment yet.',
  tags: ['payments'],
  security: [{ bearer: [] }],
  headers,
  body: {
    type: 'object',
    properties: {
      customerPaymentServiceProviderData: { description: 'The preOrderPaymentData of the express payment (transactionId)' },
      customer: { description: 'Customer data already known to the storefront' },
    },
  },
  response: { 200: { type: 'object', properties: { isSuccessful: { type: 'boolean' }, customer: customerSchema } }, ...errors },
} as const;

export async function preOrderRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const confirm = async (req: FastifyRequest, reply: FastifyReply) => {
    const tenant = await requireActiveTenant(req, deps.tenants);
    return reply.code(200).send(await confirmPreOrderPayment(deps, tenant, req.body, req.id));
  };
  const cancel = async (req: FastifyRequest, reply: FastifyReply) => {
    const tenant = await requireActiveTenant(req, deps.tenants);
    return reply.code(200).send(await cancelPreOrderPayment(deps, tenant, req.body, req.id));
  };
  for (const url of ['/private/confirm-pre-order-payment', '/confirm-pre-order-payment']) {
    app.route({ method: 'POST', url, schema: confirmSchema, config: { errorExtra: failureKeys }, handler: confirm });
  }
  for (const url of ['/private/cancel-pre-order-payment', '/cancel-pre-order-payment']) {
    app.route({ method: 'POST', url, schema: cancelSchema, config: { errorExtra: failureKeys }, handler: cancel });
  }
  app.route({
    method: 'POST',
    url: '/private/customer',
    schema: customerRouteSchema,
    config: { errorExtra: failureKeys },
    handler: async (req, reply) => {
      const tenant = await requireActiveTenant(req, deps.tenants);
      return reply.code(200).send(await lookupCustomer(deps, tenant, req.body));
    },
  });
}
