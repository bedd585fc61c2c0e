/**
 * `POST /webhooks` (live) and `POST /webhooks/test` (test), sync-api.md 4.10. Any content type is accepted as raw
 * bytes (this plugin replaces the JSON/form parsers for its own routes only), at most 1 MiB (413).
 * Once the event is stored the answer is 200 `{"isSuccessful": true}`, whatever processing does.
 */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app/context.js';
import { receiveWebhook, RejectionLimiter, type WebhookMode } from '../app/receive-webhook.js';
import { acknowledgementQueue, InlineProcessingSlots, processStoredRow, webhookQueued } from '../app/webhook-processing.js';
import { AppError } from '../domain/errors.js';
import { webhookPayloadProblem } from '../domain/input.js';
import { webhookRejectionCounter } from '../store/webhook-rate-limit.js';

const BODY_LIMIT = 1024 * 1024; // same as the server's limit (sync-api.md 4.10)

const errorSchema = { type: 'object', properties: { error: { type: 'string' }, errors: { type: 'array' } } };

export async function webhookRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  // Processing started after an answer was sent; closing the server waits for it (the database closes after).
  const running = new Set<Promise<void>>();
  app.addHook('onClose', async () => {
    await Promise.allSettled([...running]);
  });
  const slots = new InlineProcessingSlots(deps.config.webhookInlineConcurrency);
  const acks = acknowledgementQueue(deps);
  const limiter = new RejectionLimiter(webhookRejectionCounter(deps.db)); // shared by every instance on the database
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
            description:
              "Raw PSP payload of any content type (max 1 MiB), verified by the PSP's signature with the tenant's webhook secrets. `?endpoint=<tenant>` names the tenant for PSPs that register one endpoint per tenant. The acknowledgement body is the one the PSP expects.",
            response: {
              200: { description: 'Accepted (body as the PSP expects, e.g. `{"isSuccessful":true}`)', type: 'string' },
              400: errorSchema,
              403: errorSchema,
              413: errorSchema,
              429: errorSchema,
              503: errorSchema,
            },
          },
        },
        async (req, reply) => {
          acks.begin();
          reply.raw.once('close', () => acks.end());
          const raw = Buffer.isBuffer(req.body) ? req.body : req.rawBody;
          // A payload that cannot be stored (U+0000, unpaired surrogates, absurd nesting) is refused before the connector sees it.
          const problem = raw ? webhookPayloadProblem(raw.toString('utf8')) : null;
          if (problem) throw new AppError('INVALID_REQUEST', `The webhook payload cannot be accepted: ${problem.message}`);
          // Processed inline when a slot is free and acknowledgements are not queueing, else by the webhook worker
          // (woken once the events are stored).
          const inline = !acks.busy() && slots.take();
          let received;
          try {
            received = await receiveWebhook(deps, limiter, {
              raw,
              headers: req.headers,
              query: (req.query ?? {}) as Record<string, unknown>,
              method: req.method,
              mode,
              source: req.ip,
              processInline: inline,
            });
          } catch (err) {
            if (inline) slots.release();
            throw err;
          }
          const stored = received.events.filter((e) => e.inboxId !== null);
          if (!inline) {
            if (stored.length > 0) webhookQueued();
          } else if (stored.length === 0) {
            slots.release();
          } else {
            // Stored: the PSP needs nothing more (flows.md 12 step 6). Processed right after the answer is sent (step 7);
            // a failure leaves the row for the worker and never changes the acknowledgement.
            reply.raw.once('close', () => {
              const work = (async () => {
                for (const event of stored) {
                  try {
                    await acks.quiet(); // acknowledgements first: other webhook requests may be queueing now
                    await processStoredRow(deps, event.tenantIdentifier, event.pspObjectId, event.inboxId!);
                  } catch (err) {
                    req.log.error({ err, webhookInboxId: event.inboxId }, 'inline webhook processing failed');
                  }
                }
              })();
              running.add(work);
              void work.finally(() => {
                running.delete(work);
                slots.release();
              });
            });
          }
          // The connector chooses the acknowledgement the PSP expects (P8).
          return reply.code(received.ack.status as 200).type(received.ack.contentType).serializer((b: unknown) => String(b)).send(received.ack.body);
        },
      );
    };
    route('/webhooks', 'live');
    route('/webhooks/test', 'test');
  });
}
