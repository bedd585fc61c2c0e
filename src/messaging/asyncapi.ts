/**
 * The AsyncAPI 2.6 document of the messages (messages.md 1-4), served at GET /asyncapi.json.
 * In AsyncAPI 2.x, `subscribe` lists what the app sends (others subscribe to it) and `publish` what the app receives.
 */
import type { AppConfig } from '../config.js';
import { PAYMENT_STATUS_MESSAGES } from '../domain/payment-status.js';

type Schema = Record<string, unknown>;

const str = (description?: string): Schema => (description ? { type: 'string', description } : { type: 'string' });
const int = (description?: string): Schema => (description ? { type: 'integer', description } : { type: 'integer' });
const obj = (properties: Record<string, Schema>, required: string[], extra: Schema = {}): Schema => ({ type: 'object', properties, required, ...extra });

const endpoint = obj({ name: str(), path: str() }, ['name', 'path']);

const paymentMethodPayload = obj(
  {
    name: str('Method name shown in the shop, e.g. "Credit Card"'),
    providerName: str("Connector provider name (the PSP's display name)"),
    paymentAuthorizationEndpoint: str('Deprecated: {APP_BASE_URL}/private/initialize-payment (or /private/pre-order-payment for express-checkout)'),
    paymentMethodAppConfiguration: obj(
      {
        baseUrl: str('APP_BASE_URL without trailing slash'),
        endpoints: { type: 'array', items: endpoint, description: 'authorization, pre-order-payment, pre-order-confirmation, pre-order-cancellation, transfer, customer' },
        checkoutConfiguration: obj(
          {
            strategy: { type: 'string', enum: ['hosted-payment-page', 'express-checkout', 'embedded'] },
            scripts: { type: 'array', items: obj({ url: str(), queryParams: { type: 'object', additionalProperties: { type: 'string', enum: ['currencyName', 'localeName'] } } }, ['url']) },
            paymentServiceProviderData: { type: 'object', description: 'Public data for the storefront component (never secrets)' },
          },
          ['strategy'],
        ),
      },
      ['baseUrl', 'endpoints', 'checkoutConfiguration'],
    ),
  },
  ['name', 'providerName', 'paymentAuthorizationEndpoint', 'paymentMethodAppConfiguration'],
);

const deletePaymentMethodPayload = obj({ name: str(), providerName: str() }, ['name', 'providerName']);

const paymentStatusPayload = obj(
  {
    orderReference: str(),
    orderItemIds: { type: 'array', items: { type: 'integer' }, description: 'Shop sales order item ids (idSalesOrderItem)' },
    amount: { type: 'integer', minimum: 0, description: 'Minor units' },
    currencyIsoCode: str('ISO 4217'),
  },
  ['orderReference', 'orderItemIds', 'amount', 'currencyIsoCode'],
);

const paymentCreatedPayload = obj(
  {
    entityReference: str('Order reference; omitted while the payment has none'),
    paymentReference: str("The payment's current transaction id"),
    details: str('JSON object serialised to a string (status, amounts, status history, public PSP details)'),
  },
  ['paymentReference', 'details'],
);

const appConfigUpdatedPayload = obj(
  {
    appIdentifier: str(),
    status: { type: 'string', enum: ['NEW', 'CONNECTED', 'DISCONNECTED'] },
    isActive: { type: 'boolean' },
    config: { type: 'object', description: 'Stored configuration, secret values masked as ********' },
    messageChannels: { type: 'array', items: { type: 'string' } },
  },
  ['appIdentifier', 'status', 'isActive', 'config', 'messageChannels'],
  { additionalProperties: false },
);

const readyForOnboardingPayload = obj(
  {
    onboarding: obj({ url: str('{APP_BASE_URL}/private/merchants/onboarding'), strategy: { type: 'string', enum: ['api', 'iframe', 'redirect'] } }, ['url', 'strategy']),
    type: { type: 'string', const: 'payment' },
    appName: str(),
    appIdentifier: str(),
    additionalLinks: { type: 'array', items: obj({ label: str(), url: str(), attributes: { type: 'object', additionalProperties: { type: 'string' } } }, ['label', 'url']) },
    merchantOnboardingStates: {
      type: 'array',
      items: obj({ name: str(), attributes: obj({ statusText: str(), displayText: str(), buttonText: str(), buttonInfo: str() }, []) }, ['name']),
    },
  },
  ['onboarding', 'type', 'appName', 'appIdentifier'],
);

const merchantStatusPayload = obj(
  {
    merchantReference: str(),
    appIdentifier: str(),
    type: { type: 'string', const: 'payment' },
    status: { type: 'string', enum: ['pending', 'completed', 'enabled', 'restricted soon', 'restricted', 'rejected'] },
    additionalInfo: str('JSON object serialised to a string'),
  },
  ['merchantReference', 'appIdentifier', 'type', 'status'],
);

const capturePayload = obj(
  { orderReference: str(), orderItemIds: { type: 'array', items: { type: 'integer' } }, amount: { type: 'integer', exclusiveMinimum: 0 }, currencyIsoCode: str() },
  ['orderReference', 'orderItemIds', 'amount', 'currencyIsoCode'],
);
const cancelPayload = obj(
  { orderReference: str(), orderItemIds: { type: 'array', items: { type: 'integer' } }, amount: int('Shops send 0; ignored'), currencyIsoCode: str() },
  ['orderReference', 'orderItemIds', 'currencyIsoCode'],
);
const refundPayload = obj(
  {
    orderReference: str(),
    orderItems: { type: 'array', items: obj({ orderItemId: int(), sku: str() }, ['orderItemId']) },
    orderItemIds: { type: 'array', items: { type: 'integer' }, deprecated: true, description: 'Used only when orderItems is absent' },
    amount: int('Non-zero; shops send it negative, the absolute value is used'),
    currencyIsoCode: str(),
  },
  ['orderReference', 'amount', 'currencyIsoCode'],
);


/** Channel → message names, exactly messages.md section 1 (deprecated command aliases listed as well). */
export const CHANNEL_MESSAGES: Record<string, { direction: 'send' | 'receive'; messages: string[]; description: string }> = {
  'payment-method-commands': { direction: 'send', messages: ['AddPaymentMethod', 'UpdatePaymentMethod', 'DeletePaymentMethod'], description: 'app → tenant: payment methods' },
  'payment-events': { direction: 'send', messages: ['PaymentCreated', 'PaymentUpdated', ...PAYMENT_STATUS_MESSAGES], description: 'app → tenant: payment data and status' },
  'app-events': { direction: 'send', messages: ['AppConfigUpdated'], description: 'app → tenant: configuration status' },
  'merchant-app-events': {
    direction: 'send',
    messages: ['ReadyForMerchantAppOnboarding', 'MerchantAppOnboardingStatusChanged'],
    description: 'app → tenant: merchant onboarding (only with a connector that supports merchants)',
  },
  'payment-commands': {
    direction: 'receive',
    messages: ['CapturePayment', 'CancelPayment', 'RefundPayment', 'PaymentConfirmationRequested', 'PaymentCancelReservationRequested', 'PaymentRefundRequested'],
    description: 'tenant → app: OMS commands',
  },
};

const PAYLOAD_OF: Record<string, Schema> = {
  AddPaymentMethod: paymentMethodPayload,
  UpdatePaymentMethod: paymentMethodPayload,
  DeletePaymentMethod: deletePaymentMethodPayload,
  PaymentCreated: paymentCreatedPayload,
  PaymentUpdated: paymentCreatedPayload,
  AppConfigUpdated: appConfigUpdatedPayload,
  ReadyForMerchantAppOnboarding: readyForOnboardingPayload,
  MerchantAppOnboardingStatusChanged: merchantStatusPayload,
  CapturePayment: capturePayload,
  CancelPayment: cancelPayload,
  RefundPayment: refundPayload,
  PaymentConfirmationRequested: capturePayload,
  PaymentCancelReservationRequested: cancelPayload,
  PaymentRefundRequested: refundPayload,
  ...Object.fromEntries(PAYMENT_STATUS_MESSAGES.map((m) => [m, paymentStatusPayload])),
};

const DEPRECATED = new Set(['PaymentConfirmationRequested', 'PaymentCancelReservationRequested', 'PaymentRefundRequested']);

const attributes = obj(
  {
    transferName: str('Message name (type, preferred)'),
    name: str('Message name (type, second)'),
    event: str('Message name (type, third)'),
    tenantIdentifier: str('Tenant (preferred)'),
    storeReference: str('Tenant (deprecated fallback)'),
    actorId: str(),
    publisher: str(),
    timestamp: str('UTC YYYY-MM-DDTHH:MM:SS.ffffff, strictly increasing per tenant'),
    correlationId: str(),
    transactionId: str('Message-level trace id (the message id), not the payment transaction id'),
    messageId: str('Deterministic UUIDv5 message id'),
  },
  [],
);

export function buildAsyncApiDocument(config: Pick<AppConfig, 'appBaseUrl' | 'appIdentifier' | 'messageTransport' | 'amqpExchange'>): Record<string, unknown> {
  const messages: Record<string, Schema> = {};
  for (const [name, payload] of Object.entries(PAYLOAD_OF)) {
    messages[name] = {
      name,
      title: name,
      contentType: 'application/json',
      headers: attributes,
      payload,
      ...(DEPRECATED.has(name) ? { deprecated: true, description: `Deprecated alias; handled like ${name.replace('PaymentConfirmationRequested', 'CapturePayment').replace('PaymentCancelReservationRequested', 'CancelPayment').replace('PaymentRefundRequested', 'RefundPayment')}` } : {}),
    };
  }
  const channels: Record<string, Schema> = {};
  for (const [channel, c] of Object.entries(CHANNEL_MESSAGES)) {
    const op = {
      operationId: c.direction === 'send' ? `send-${channel}` : `receive-${channel}`,
      summary: c.description,
      message: { oneOf: c.messages.map((m) => ({ $ref: `#/components/messages/${m}` })) },
    };
    channels[channel] = { description: c.description, ...(c.direction === 'send' ? { subscribe: op } : { publish: op }) };
  }
  return {
    asyncapi: '2.6.0',
    id: `urn:open-acp-pay:${config.appIdentifier}`,
    info: {
      title: 'Open ACP Pay messages',
      version: '0.1.0',
      description:
        "Messages of Spryker's ACP payment contract. `subscribe` operations are messages the app sends, `publish` operations messages it consumes. Attributes travel as HTTP headers (Transfer-Name, Tenant-Identifier, ...) on the http/local transports and as AMQP headers on rabbitmq.",
    },
    defaultContentType: 'application/json',
    servers: {
      local: { url: `${config.appBaseUrl}/event-platform`, protocol: 'http', description: 'Embedded Event Platform (MESSAGE_TRANSPORT=local): POST/GET/DELETE /event-platform/{channel}' },
      rabbitmq: { url: 'amqp://broker', protocol: 'amqp', description: `MESSAGE_TRANSPORT=rabbitmq: topic exchange "${config.amqpExchange}", routing key = channel` },
    },
    channels,
    components: { messages },
  };
}
