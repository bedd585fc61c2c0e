/**
 * `GET /app-payment` (hosted payment page, sync-api.md 4.11) and `GET /app-payment/redirect` (PSP return, 4.12).
 * Server-rendered HTML (src/http/payment-page-html.ts), no JavaScript of its own, every value HTML-escaped, restrictive CSP.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { CspSources } from '../connectors/types.js';
import type { AppDeps } from '../app/context.js';
import { handlePaymentReturn, showPaymentPage, type PageOutcome } from '../app/payment-page.js';
import { formatAmount } from '../domain/money.js';
import { resolveLocale } from '../i18n/messages.js';
import { renderErrorPage, renderPaymentPage } from './payment-page-html.js';

/** Minor units → display string (domain/money.ts). */
export const formatMoney = formatAmount;

interface Csp {
  frameOrigin: string | null;
  /** Sources the connector's checkout declares (P6). */
  sources?: CspSources;
  navigationOrigins?: string[];
  /** Per-response nonce of the connector's inline script. */
  nonce?: string;
}

const uniq = (xs: Array<string | undefined>): string[] => [...new Set(xs.filter((x): x is string => typeof x === 'string' && x !== ''))];

function cspHeader(c: Csp): string {
  const src = c.sources ?? {};
  // form-action also covers the redirects after a form post (PSP → /app-payment/redirect → the shop's URLs).
  const formAction = uniq(["'self'", ...(src.formAction ?? []), ...(c.navigationOrigins ?? [])]).join(' ');
  const parts = [
    "default-src 'none'",
    "style-src 'unsafe-inline'",
    `img-src ${uniq(["'self'", 'data:', ...(src.img ?? [])]).join(' ')}`,
    "base-uri 'none'",
    `form-action ${formAction}`,
    `frame-ancestors ${c.frameOrigin ?? "'none'"}`,
  ];
  const script = uniq([...(c.nonce ? [`'nonce-${c.nonce}'`] : []), ...(src.script ?? [])]);
  if (script.length > 0) parts.push(`script-src ${script.join(' ')}`);
  const frame = uniq(src.frame ?? []);
  if (frame.length > 0) parts.push(`frame-src ${frame.join(' ')}`);
  const connect = uniq(src.connect ?? []);
  if (connect.length > 0) parts.push(`connect-src ${connect.join(' ')}`);
  return parts.join('; ');
}

function htmlHeaders(reply: FastifyReply, csp: Csp): FastifyReply {
  return reply
    .type('text/html; charset=utf-8')
    .header('Cache-Control', 'no-store')
    .header('Referrer-Policy', 'no-referrer')
    .header('X-Content-Type-Options', 'nosniff')
    .header('Content-Security-Policy', cspHeader(csp));
}

function send(reply: FastifyReply, o: PageOutcome): FastifyReply {
  switch (o.kind) {
    case 'redirect':
      return reply.code(302).header('Location', o.location).header('Cache-Control', 'no-store').header('Referrer-Policy', 'no-referrer').send();
    case 'text':
      return reply.code(o.status).type('text/plain; charset=utf-8').header('Cache-Control', 'no-store').send(o.text);
    case 'page': {
      const nonce = o.view.script ? randomBytes(18).toString('base64') : undefined;
      return htmlHeaders(reply.code(200), { frameOrigin: o.frameOrigin, sources: o.csp, navigationOrigins: o.navigationOrigins, nonce }).send(renderPaymentPage(o.view, nonce));
    }
    case 'error-page':
      return htmlHeaders(reply.code(o.status), { frameOrigin: o.frameOrigin }).send(renderErrorPage(o));
  }
}

const querySchema = {
  type: 'object',
  properties: {
    transactionId: { type: 'string', description: 'The payment\'s transaction id.' },
    tenantIdentifier: { type: 'string', description: 'The tenant.' },
  },
} as const;

export async function paymentPageRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get(
    '/app-payment',
    {
      schema: {
        tags: ['payment page'],
        summary: 'Hosted payment page (HTML)',
        querystring: { ...querySchema, properties: { ...querySchema.properties, error: { type: 'string', description: 'Decline reason code to show.' } } },
        response: { 200: { description: 'HTML page', content: { 'text/html': { schema: { type: 'string' } } } }, 302: { description: 'Already paid or cancelled', type: 'null' } },
      },
    },
    async (req, reply) => send(reply, await showPaymentPage(deps, (req.query ?? {}) as Record<string, unknown>, req.id, resolveLocale(req.headers['accept-language']))),
  );
  app.get(
    '/app-payment/redirect',
    {
      schema: {
        tags: ['payment page'],
        summary: 'Return address for the PSP: checks the payment status and redirects the shopper',
        querystring: querySchema,
        response: { 302: { description: 'Redirect per payment status', type: 'null' } },
      },
    },
    async (req, reply) => send(reply, await handlePaymentReturn(deps, (req.query ?? {}) as Record<string, unknown>, req.id, resolveLocale(req.headers['accept-language']))),
  );
}
