/**
 * `POST /webhooks` (live) and `POST /webhooks/test` (test), sync-api.md 4.10. Any content type is accepted as raw
 * bytes (this plugin replaces the JSON/form parsers for its own routes only), at most 1 MiB (413).
 * Once the event is stored the answer is 200 `{"isSuccessful": true}`, whatever processing does.
 */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app/context.js';
import { receiveWebhook, RejectionLimiter, type WebhookMode } from '../app/receive-webhook.js';
import { processInboxRow, processObjectRows } from '../app/webhook-processing.js';

const BODY_LIMIT = 1024 * 1024; // same as the server's limit (sync-api.md 4.10)

const errorSchema = { type: 'object', properties: { error: { type: 'string' }, errors: { type: 'array' } } };

export async function webhookRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const limiter = new RejectionLimiter();
  await app.register(async (s) => {
    s.removeAllContentTypeParsers();
    s.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (req, body, done) => {
      req.rawBody = body as Buffer;
      done(null, body);
    });

    const route = (path: string, mode: WebhookMode): void => {
      s.post(
        path,
        {
          config: { allowForm: true },
          schema: {
            tags: ['webhooks'],
            summary: mode === 'live' ? 'PSP webhook (live mode events)' : 'PSP webhook (test mode events)',
            description: 'Raw PSP payload of any content type (max 1 MiB), verified by the PSP signature (sandbox: `Sandbox-Signature`).',
            response: {
              200: { type: 'object', properties: { isSuccessful: { type: 'boolean' } }, required: ['isSuccessful'] },
              400: errorSchema,
              403: errorSchema,
              413: errorSchema,
              429: errorSchema,
              503: errorSchema,
            },
          },
        },
        async (req, reply) => {
          const raw = Buffer.isBuffer(req.body) ? req.body : req.rawBody;
          const received = await receiveWebhook(deps, limiter, { raw, headers: req.headers, mode, source: req.ip });
          if (received.inboxId) {
            // Processed inline before answering; a failure leaves the row for the worker and never changes the 200.
            try {
              if (received.pspObjectId) await processObjectRows(deps, received.tenantIdentifier, received.pspObjectId);
              else await processInboxRow(deps, received.inboxId);
            } catch (err) {
              req.log.error({ err, webhookInboxId: received.inboxId }, 'inline webhook processing failed');
            }
          }
          return reply.code(200).type('application/json; charset=utf-8').send({ isSuccessful: true });
        },
      );
    };
    route('/webhooks', 'live');
    route('/webhooks/test', 'test');
  });
}
