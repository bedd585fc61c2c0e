/**
 * `POST /private/initialize-payment` (alias `/initialize-payment`) and `POST /private/pre-order-payment`
 * (sync-api.md 4.3, 4.4): one handler. Accepts JSON at the top level, JSON wrapped in `form_params`, and
 * form-encoded PHP bracket bodies. Every error body carries `isSuccessful: false` and `message` in addition to
 * the section-3 keys.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppDeps } from '../app/context.js';
import { initializePayment } from '../app/initialize-payment.js';
import { failureKeys } from './errors.js';
import { requireActiveTenant } from './tenant.js';
import { isObject } from '../domain/input.js';

/** Objects whose keys are all non-negative integers become arrays (ordered by key), recursively (PHP bracket notation). */
export function arraysFromNumericKeys(value: unknown, depth = 0): unknown {
  if (depth > 20) return value;
  if (Array.isArray(value)) return value.map((v) => arraysFromNumericKeys(v, depth + 1));
  if (!isObject(value)) return value;
  const keys = Object.keys(value);
  if (keys.length > 0 && keys.every((k) => /^(0|[1-9][0-9]{0,8})$/.test(k))) {
    return keys
      .map(Number)
      .sort((a, b) => a - b)
      .map((k) => arraysFromNumericKeys(value[String(k)], depth + 1));
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = arraysFromNumericKeys(value[k], depth + 1);
  return out;
}

/** The request object of any accepted encoding. */
export function unwrapInitializeBody(body: unknown, contentType: string): unknown {
  const form = contentType.toLowerCase().startsWith('application/x-www-form-urlencoded');
  let b = body;
  if (isObject(b) && isObject(b.form_params)) b = b.form_params;
  return form ? arraysFromNumericKeys(b) : b;
}

const errorBodySchema = { type: 'object', description: 'Error body (sync-api.md 3) plus isSuccessful: false and message', additionalProperties: true } as const;

const schema = {
  summary: 'Initialize a payment (hosted page or pre-order)',
  description:
    'Hosted mode (orderData.orderReference present): creates the PSP payment and answers the hosted payment page URL; repeating the call for the same order answers the same result. ' +
    'Pre-order mode (no orderReference): creates a payment without order and answers preOrderPaymentData; a repeat with preOrderPaymentData.transactionId reuses it. ' +
    'Bodies: JSON, JSON wrapped in form_params, or application/x-www-form-urlencoded with PHP bracket notation.',
  tags: ['payments'],
  security: [{ bearer: [] }],
  consumes: ['application/json', 'application/vnd.api+json', 'application/x-www-form-urlencoded'],
  headers: {
    type: 'object',
    properties: {
      'x-tenant-identifier': { type: 'string', description: 'The tenant (fallback: X-Store-Reference)' },
      'x-store-reference': { type: 'string', description: 'Legacy tenant header' },
    },
  },
  body: {
    type: 'object',
    description: 'Initialize-payment request (sync-api.md 4.3)',
    properties: {
      orderData: { description: 'The flattened quote: orderReference, grandTotal (minor units), currencyCode, paymentMethod, items[].idSalesOrderItem, ...' },
      redirectSuccessUrl: { description: 'Absolute URL (hosted mode)' },
      redirectCancelUrl: { description: 'Absolute URL (hosted mode)' },
      checkoutSummaryPageUrl: { description: 'Absolute URL (optional)' },
      preOrderPaymentData: { description: 'Pre-order repeat: what the first call answered (transactionId)' },
      localeName: { description: 'Shopper locale, e.g. en_US' },
      form_params: { description: 'Alternative: the whole request wrapped in this key' },
    },
  },
  response: {
    200: {
      type: 'object',
      properties: {
        isSuccessful: { type: 'boolean' },
        transactionId: { type: 'string' },
        redirectUrl: { type: ['string', 'null'] },
        message: { type: ['string', 'null'] },
        preOrderPaymentData: { type: 'object', additionalProperties: true, description: 'Pre-order mode only' },
      },
    },
    400: errorBodySchema,
    403: errorBodySchema,
    404: errorBodySchema,
    409: errorBodySchema,
    422: errorBodySchema,
    502: errorBodySchema,
    504: errorBodySchema,
  },
} as const;

export async function paymentRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const tenant = await requireActiveTenant(req, deps.tenants);
    const body = unwrapInitializeBody(req.body, String(req.headers['content-type'] ?? ''));
    const answer = await initializePayment(deps, tenant, body, req.id);
    return reply.code(200).send(answer);
  };
  for (const url of ['/private/initialize-payment', '/initialize-payment', '/private/pre-order-payment']) {
    app.route({ method: 'POST', url, schema, config: { allowForm: true, errorExtra: failureKeys }, handler });
  }
}
