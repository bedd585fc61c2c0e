/**
 * Marketplace endpoints: `POST /private/payments/transfers` (alias `/payments/transfers`, sync-api.md 4.7) and
 * `POST /private/merchants/onboarding` (4.9). Thin: tenant checks, then the use cases.
 * Every error body of the transfer routes carries `transfers: []` (Spryker clients read it even on failure).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppDeps } from '../app/context.js';
import { onboardMerchant } from '../app/merchant-onboarding.js';
import { processTransfers } from '../app/transfers.js';
import { firstHeader, requireActiveTenant } from './tenant.js';


const errorBodySchema = { type: 'object', description: 'Error body (sync-api.md 3)', additionalProperties: true } as const;

const tenantHeaders = {
  type: 'object',
  properties: {
    'x-tenant-identifier': { type: 'string', description: 'The tenant (fallback: X-Store-Reference)' },
    'x-store-reference': { type: 'string', description: 'Legacy tenant header' },
  },
} as const;

const itemSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    type: { type: 'string' },
    merchantReference: { type: 'string' },
    orderReference: { type: 'string' },
    itemReference: { type: 'string' },
    amount: { type: 'string' },
    transferId: { type: ['string', 'null'] },
  },
} as const;

const transfersSchema = {
  summary: 'Pay out captured money to merchants or reverse earlier payouts',
  description:
    'Items from paymentTransmissionItems (if non-empty) else orderItems (+ orderExpenses); camelCase or snake_case keys; amounts are strings of integers ' +
    '(positive: payout, negative: reversal with transferId, zero: skipped). Payouts are grouped by order and merchant, reversals by transferId, order and merchant; ' +
    'one entry per group in the order of its first item. Repeating a succeeded group answers the same transferId without a second transfer. ' +
    'Whole-request errors carry transfers: [].',
  tags: ['marketplace'],
  security: [{ bearer: [] }],
  headers: tenantHeaders,
  body: {
    description:
      'Transfer request (sync-api.md 4.7): paymentTransmissionItems (items: merchantReference/merchant_reference, orderReference/order_reference, ' +
      'itemReference/item_reference, amount, transferId/transfer_id, type); orderItems (same items, read when paymentTransmissionItems is empty); ' +
      'orderExpenses (legacy expense items, type order-expense).',
  },
  response: {
    200: {
      type: 'object',
      additionalProperties: false,
      properties: {
        transfers: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            properties: {
              isSuccessful: { type: 'boolean' },
              failureMessage: { type: ['string', 'null'] },
              merchantReference: { type: 'string' },
              orderReference: { type: 'string' },
              transferId: { type: ['string', 'null'] },
              amount: { type: 'string' },
              paymentTransmissionItems: { type: 'array', items: itemSchema },
            },
          },
        },
      },
    },
    400: errorBodySchema,
    403: errorBodySchema,
    404: errorBodySchema,
  },
} as const;

const onboardingSchema = {
  summary: 'Start or resume a merchant onboarding at the PSP',
  description:
    'Upserts the merchant, creates its PSP account if needed (status pending, MerchantAppOnboardingStatusChanged) and answers a fresh onboarding link. 201 for a new merchant, 200 otherwise.',
  tags: ['marketplace'],
  security: [{ bearer: [] }],
  headers: {
    type: 'object',
    properties: { ...tenantHeaders.properties, 'x-merchant-reference': { type: 'string', description: 'Required; must equal merchant.merchantReference' } },
  },
  body: {
    description: 'Onboarding request (sync-api.md 4.9): merchant {merchantReference, name}, successUrl, refreshUrl (absolute URLs), cancelUrl, errorUrl (optional).',
  },
  response: {
    ...Object.fromEntries(
      [200, 201].map((s) => [
        s,
        {
          type: 'object',
          properties: {
            url: { type: 'string' },
            strategy: { type: 'string', enum: ['redirect', 'iframe'] },
            content: { type: ['string', 'null'] },
            merchantReference: { type: 'string' },
            status: { type: 'string' },
          },
        },
      ]),
    ),
    400: errorBodySchema,
    403: errorBodySchema,
    404: errorBodySchema,
    409: errorBodySchema,
    422: errorBodySchema,
    502: errorBodySchema,
    504: errorBodySchema,
  },
} as const;



export async function marketplaceRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const transfers = async (req: FastifyRequest, reply: FastifyReply) => {
    const tenant = await requireActiveTenant(req, deps.tenants);
    return reply.code(200).send(await processTransfers(deps, tenant, req.body));
  };
  for (const url of ['/private/payments/transfers', '/payments/transfers']) {
    app.route({ method: 'POST', url, schema: transfersSchema, config: { errorExtra: () => ({ transfers: [] }) }, handler: transfers });
  }

  app.route({
    method: 'POST',
    url: '/private/merchants/onboarding',
    schema: onboardingSchema,
    handler: async (req: FastifyRequest, reply: FastifyReply) => {
      const tenant = await requireActiveTenant(req, deps.tenants);
      const answer = await onboardMerchant(deps, tenant, firstHeader(req, 'x-merchant-reference'), req.body, req.id);
      return reply.code(answer.httpStatus).send(answer.body);
    },
  });
}
