/**
 * The embedded Event Platform (messages.md 9.2): `/event-platform/{channel}` speaks Spryker's HTTP
 * channel protocol (publish, receive with a 30 s lease, acknowledge), backed by the database.
 * Publishing to `payment-commands` stores the command in the app's command inbox instead of the hub.
 * Authentication is applied by the hook of src/http/auth.ts (prefix /event-platform/).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppDeps } from '../app/context.js';
import { AppError } from '../domain/errors.js';
import { storeCommand } from '../messaging/command-inbox.js';
import { hubAck, hubInsert, hubReceive } from '../messaging/hub.js';
import { CHANNELS, type Channel } from '../messaging/outbox.js';
import { attributesFromHeaders, messageTenantOf, messageTypeOf } from '../messaging/transports/attributes.js';

const COMMAND_CHANNEL: Channel = 'payment-commands';
const MAX_MESSAGE_ID_LENGTH = 255;
const MAX_CONSUMER_ID_LENGTH = 255;
const DEFAULT_LIMIT = 100;

const channelParams = {
  type: 'object',
  required: ['channel'],
  properties: { channel: { type: 'string', description: `One of ${CHANNELS.join(', ')}; others answer 404.` } },
} as const;

const attributeHeaderProps = {
  'transfer-name': { type: 'string', description: 'Message type (preferred); `X-Transfer-Name` accepted too' },
  name: { type: 'string', description: 'Message type (second choice)' },
  event: { type: 'string', description: 'Message type (third choice)' },
  'tenant-identifier': { type: 'string', description: 'Tenant (preferred); addressed consumer on app → tenant channels' },
  'store-reference': { type: 'string', description: 'Tenant (fallback)' },
  'message-id': { type: 'string', description: 'Optional; publishing an id already stored on the channel is idempotent' },
  'actor-id': { type: 'string' },
  publisher: { type: 'string' },
  timestamp: { type: 'string' },
  'correlation-id': { type: 'string' },
  'transaction-id': { type: 'string' },
} as const;

const consumerHeaders = {
  type: 'object',
  properties: { 'consumer-id': { type: 'string', description: 'Consumer id: the tenant identifier for app → tenant channels (required)' } },
} as const;

const errorResponse = {
  type: 'object',
  properties: {
    error: { type: 'string' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { code: { type: ['string', 'integer'] }, status: { type: 'integer' }, message: { type: 'string' }, detail: { type: 'string' }, field: { type: 'string' } },
      },
    },
  },
} as const;

const hubMessageSchema = {
  type: 'object',
  required: ['MessageId', 'MessageBody', 'MessageAttributes'],
  properties: {
    MessageId: { type: 'string' },
    MessageBody: { type: 'string', description: 'The payload as a JSON string' },
    MessageAttributes: { type: 'object', additionalProperties: { type: 'string' }, description: 'Attributes with camelCase keys' },
  },
} as const;

function channelOf(raw: string): Channel {
  if (!(CHANNELS as readonly string[]).includes(raw)) throw new AppError('NOT_FOUND', `Unknown channel "${raw}".`);
  return raw as Channel;
}

function consumerIdOf(req: FastifyRequest): string {
  const raw = req.headers['consumer-id'];
  const v = (Array.isArray(raw) ? raw[0] : raw)?.trim();
  if (!v) throw new AppError('VALIDATION_FAILED', 'Header "Consumer-Id" is required.', { field: 'Consumer-Id' });
  if (v.length > MAX_CONSUMER_ID_LENGTH) throw new AppError('VALIDATION_FAILED', `Header "Consumer-Id" must be at most ${MAX_CONSUMER_ID_LENGTH} characters.`, { field: 'Consumer-Id' });
  return v;
}

function limitOf(raw: unknown): number {
  if (raw === undefined || raw === '') return DEFAULT_LIMIT;
  const s = Array.isArray(raw) ? String(raw[0]) : String(raw);
  if (!/^[0-9]+$/.test(s) || Number(s) < 1 || Number(s) > 100) {
    throw new AppError('VALIDATION_FAILED', 'Query parameter "limit" must be an integer between 1 and 100.', { field: 'limit' });
  }
  return Number(s);
}

/** Unknown channels answer 404 before the body is validated. */
async function checkChannel(req: FastifyRequest): Promise<void> {
  channelOf((req.params as { channel: string }).channel);
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export async function eventPlatformRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { db } = deps;

  app.post<{ Params: { channel: string }; Body: unknown }>(
    '/event-platform/:channel',
    {
      preValidation: checkChannel,
      schema: {
        tags: ['event-platform'],
        summary: 'Publish a message (embedded Event Platform)',
        description:
          'Attributes travel as headers (messages.md 2.2 names, with or without `X-` prefix). A type and a tenant are required. ' +
          'Messages on app → tenant channels are addressed to the consumer named by the tenant; `payment-commands` go to the app\'s command inbox.',
        security: [{ bearer: [] }],
        params: channelParams,
        headers: { type: 'object', properties: attributeHeaderProps },
        body: { type: 'object', additionalProperties: true, description: 'The message payload (JSON object)' },
        response: {
          200: { type: 'object', required: ['MessageId'], properties: { MessageId: { type: 'string' } } },
          400: errorResponse,
          404: errorResponse,
        },
      },
    },
    async (req) => {
      const channel = channelOf(req.params.channel);
      const body = req.body;
      if (!isPlainObject(body)) throw new AppError('INVALID_REQUEST', 'The request body must be a JSON object.');
      const attrs = attributesFromHeaders(req.headers);
      const type = messageTypeOf(attrs);
      if (!type) throw new AppError('VALIDATION_FAILED', 'Header "Transfer-Name" (or "Name" or "Event") is required.', { field: 'Transfer-Name' });
      const tenant = messageTenantOf(attrs);
      if (!tenant) throw new AppError('VALIDATION_FAILED', 'Header "Tenant-Identifier" (or "Store-Reference") is required.', { field: 'Tenant-Identifier' });
      if (attrs.messageId !== undefined && attrs.messageId.length > MAX_MESSAGE_ID_LENGTH) {
        throw new AppError('VALIDATION_FAILED', `Header "Message-Id" must be at most ${MAX_MESSAGE_ID_LENGTH} characters.`, { field: 'Message-Id' });
      }
      const messageId = attrs.messageId ?? randomUUID();
      const attributes: Record<string, string> = { ...attrs, messageId };

      if (channel === COMMAND_CHANNEL) {
        // one statement of its own (no transaction: one exchange with the database)
        const stored = await storeCommand(db, {
          transport: 'local',
          channel,
          transportMessageId: messageId,
          messageName: type,
          tenantIdentifier: tenant,
          attributes,
          payload: body,
        });
        req.log.info({ messageId, messageName: type, tenantIdentifier: tenant, inboxId: stored.id, duplicate: stored.duplicate }, 'command received (local Event Platform)');
        return { MessageId: messageId };
      }

      const stored = await hubInsert(db, { messageId, channel, consumerId: tenant, body: JSON.stringify(body), attributes });
      req.log.debug({ messageId, channel, duplicate: stored.duplicate }, 'message published to the local Event Platform');
      return { MessageId: stored.messageId };
    },
  );

  app.get<{ Params: { channel: string }; Querystring: { limit?: string } }>(
    '/event-platform/:channel',
    {
      preValidation: checkChannel,
      schema: {
        tags: ['event-platform'],
        summary: 'Receive messages (embedded Event Platform)',
        description: 'Oldest available messages addressed to the `Consumer-Id`, leased for 30 s. `payment-commands` always answers `[]` (the app consumes it internally).',
        security: [{ bearer: [] }],
        params: channelParams,
        headers: consumerHeaders,
        querystring: { type: 'object', properties: { limit: { type: 'string', pattern: '^[0-9]+$', description: '1..100, default 100' } } },
        response: { 200: { type: 'array', items: hubMessageSchema }, 400: errorResponse, 404: errorResponse },
      },
    },
    async (req) => {
      const channel = channelOf(req.params.channel);
      const consumerId = consumerIdOf(req);
      const limit = limitOf(req.query.limit);
      if (channel === COMMAND_CHANNEL) return [];
      return hubReceive(db, channel, consumerId, limit);
    },
  );

  app.delete<{ Params: { channel: string }; Body: { messageIds: string[] } }>(
    '/event-platform/:channel',
    {
      preValidation: checkChannel,
      schema: {
        tags: ['event-platform'],
        summary: 'Acknowledge messages (embedded Event Platform)',
        description: 'Acknowledged messages are not delivered again. Unknown, already acknowledged or foreign ids are ignored.',
        security: [{ bearer: [] }],
        params: channelParams,
        headers: consumerHeaders,
        body: {
          type: 'object',
          required: ['messageIds'],
          properties: { messageIds: { type: 'array', maxItems: 1000, items: { type: 'string' } } },
        },
        response: { 204: { type: 'null', description: 'Acknowledged' }, 400: errorResponse, 404: errorResponse },
      },
    },
    async (req, reply) => {
      const channel = channelOf(req.params.channel);
      const consumerId = consumerIdOf(req);
      const body = req.body;
      if (!isPlainObject(body) || !Array.isArray(body.messageIds)) {
        throw new AppError('VALIDATION_FAILED', 'Field "messageIds" is required.', { field: 'messageIds' });
      }
      if (channel !== COMMAND_CHANNEL) await hubAck(db, channel, consumerId, body.messageIds);
      return reply.code(204).send();
    },
  );
}
