/**
 * The sandbox PSP's HTTP surface under `/sandbox` (sandbox-psp.md): the JSON API (`/v1/...`, bearer secret key,
 * Idempotency-Key) and the browser pages (hosted checkout, challenge, onboarding).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { AppError } from '../domain/errors.js';
import type { Db } from '../store/db.js';
import { normaliseCard } from './cards.js';
import { loadPayment, type Payment } from './model.js';
import { challengePage, checkoutPage, errorPage, onboardingPage } from './pages.js';
import { SandboxService } from './service.js';
import { expressRoutes } from './express.js';
import { SbxError, accountForKey, badParam, isHttpUrl, notFound, withTransactionId, type SbxResult } from './util.js';

export interface SandboxRouteOptions {
  db: Db;
  log: Logger;
  /** Only these config values are used; `appBaseUrl` is where browsers reach this process (the sandbox is at `${appBaseUrl}/sandbox`). */
  config: { appBaseUrl: string; sandboxWebhookDelayMs: number; sandboxRefundSettleMs: number };
}

export const SANDBOX_PREFIX = '/sandbox';

export function sandboxService(opts: SandboxRouteOptions): SandboxService {
  return new SandboxService(opts.db, {
    publicBaseUrl: () => `${opts.config.appBaseUrl}${SANDBOX_PREFIX}`,
    webhookDelayMs: opts.config.sandboxWebhookDelayMs,
    refundSettleMs: opts.config.sandboxRefundSettleMs,
  });
}

// ---- input checks (the sandbox answers its own error format, so bodies are checked here, not by Ajv) ----

type Body = Record<string, unknown>;

function objectBody(v: unknown, optional = false): Body {
  if (v === undefined || v === null) {
    if (optional) return {};
    throw new SbxError('invalid_request', 'parameter_missing', 'A JSON object body is required.');
  }
  if (typeof v !== 'object' || Array.isArray(v)) throw new SbxError('invalid_request', 'parameter_invalid', 'The body must be a JSON object.');
  return v as Body;
}

function amountOf(b: Body, name: string, required: boolean): number | undefined {
  const v = b[name];
  if (v === undefined || v === null) {
    if (required) throw new SbxError('invalid_request', 'parameter_missing', `Missing required param: ${name}.`, { param: name });
    return undefined;
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw badParam(name, `${name} must be a positive integer (minor units).`);
  return v;
}

function strOf(b: Body, name: string, required: boolean, max = 500): string | undefined {
  const v = b[name];
  if (v === undefined || v === null) {
    if (required) throw new SbxError('invalid_request', 'parameter_missing', `Missing required param: ${name}.`, { param: name });
    return undefined;
  }
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw badParam(name, `${name} must be a non-empty string of at most ${max} characters.`);
  return v;
}

function currencyOf(b: Body): string {
  const c = strOf(b, 'currency', true)!;
  if (!/^[A-Za-z]{3}$/.test(c)) throw badParam('currency', 'currency must be a three-letter ISO 4217 code.');
  return c;
}

function metadataOf(b: Body): Record<string, unknown> | undefined {
  const m = b.metadata;
  if (m === undefined || m === null) return undefined;
  if (typeof m !== 'object' || Array.isArray(m) || Object.keys(m).length > 50) throw badParam('metadata', 'metadata must be an object of at most 50 keys.');
  for (const [k, v] of Object.entries(m)) {
    if (k.length > 100 || !['string', 'number', 'boolean'].includes(typeof v) || String(v).length > 500) throw badParam('metadata', `metadata.${k} must be a short string, number or boolean.`);
  }
  return m as Record<string, unknown>;
}

function urlOf(b: Body, name: string, required: boolean): string | undefined {
  const v = strOf(b, name, required, 2000);
  if (v !== undefined && !isHttpUrl(v)) throw badParam(name, `${name} must be an absolute http(s) URL.`);
  return v;
}

const PAYER_KEYS = ['salutation', 'firstName', 'lastName', 'email', 'phone', 'company', 'gender', 'dateOfBirth'];
const ADDRESS_KEYS = ['salutation', 'firstName', 'lastName', 'address1', 'address2', 'address3', 'zipCode', 'city', 'state', 'region', 'iso2Code', 'company', 'email', 'phone', 'cellPhone'];

function pickStrings(v: unknown, keys: string[], param: string): Record<string, string | null> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badParam(param, `${param} must be an object.`);
  const out: Record<string, string | null> = {};
  for (const k of keys) {
    const x = (v as Body)[k];
    if (x === undefined || x === null) out[k] = null;
    else if (typeof x === 'string' && x.length <= 500) out[k] = x;
    else throw badParam(`${param}.${k}`, `${param}.${k} must be a string.`);
  }
  return out;
}

function payerOf(b: Body): Record<string, unknown> | undefined {
  if (b.payer === undefined || b.payer === null) return undefined;
  const p: Record<string, unknown> = pickStrings(b.payer, PAYER_KEYS, 'payer');
  for (const a of ['billingAddress', 'shippingAddress']) {
    const v = (b.payer as Body)[a];
    p[a] = v === undefined || v === null ? null : pickStrings(v, ADDRESS_KEYS, `payer.${a}`);
  }
  return p;
}

function cardOf(b: Body): ReturnType<typeof normaliseCard> {
  const c = b.card;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw new SbxError('invalid_request', 'parameter_missing', 'Missing required param: card.', { param: 'card' });
  return normaliseCard(c as Body);
}

function authenticate(req: FastifyRequest): string {
  const h = req.headers.authorization;
  const m = typeof h === 'string' ? /^Bearer\s+(\S+)$/i.exec(h) : null;
  const account = m ? accountForKey(m[1]!) : undefined;
  if (!account) throw new SbxError('authentication', 'invalid_api_key', 'Invalid API key provided.');
  return account;
}

function idemKey(req: FastifyRequest): string | undefined {
  const k = req.headers['idempotency-key'];
  return typeof k === 'string' ? k : undefined;
}

const send = (reply: FastifyReply, r: SbxResult): FastifyReply => reply.code(r.status).type('application/json; charset=utf-8').send(r.body);

const isPageUrl = (url: string): boolean => /^\/sandbox\/(checkout|onboarding)\//.test(url) || /\/(checkout|onboarding)\//.test(url.split('?')[0]!);

/** Registers the sandbox under `/sandbox` on `app` (its own error format and 404 inside that prefix). */
export async function sandboxRoutes(app: FastifyInstance, opts: SandboxRouteOptions): Promise<void> {
  const svc = sandboxService(opts);
  await app.register(
    async (s) => {
      s.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, req, reply) => {
        let e: SbxError;
        if (err instanceof SbxError) e = err;
        else if (err instanceof AppError) e = new SbxError(err.status === 401 ? 'authentication' : 'invalid_request', err.status === 415 ? 'unsupported_media_type' : 'invalid_request', err.message);
        else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) e = new SbxError('invalid_request', 'invalid_request', err.message);
        else {
          req.log.error({ err }, 'sandbox: unexpected error');
          e = new SbxError('api_error', 'internal', `Internal error. Reference: ${req.id}`);
        }
        const status = err instanceof AppError ? err.status : !(err instanceof SbxError) && typeof err.statusCode === 'number' && err.statusCode < 500 ? err.statusCode : e.status;
        if (isPageUrl(req.url)) return errorPage(reply, status, e.message);
        return reply.code(status).type('application/json; charset=utf-8').send(e.body());
      });
      s.setNotFoundHandler((req, reply) => send(reply, { status: 404, body: new SbxError('not_found', 'unknown_endpoint', `No sandbox endpoint ${req.method} ${req.url.split('?')[0]}.`).body() }));

      const doc = (summary: string) => ({ schema: { tags: ['sandbox'], summary } });
      type P = { Params: { id: string } };

      // ---- API ----
      s.get('/v1/account', doc('Sandbox: the account of the secret key'), async (req, reply) => send(reply, { status: 200, body: { id: authenticate(req), object: 'account', livemode: false } }));

      s.post('/v1/webhook-endpoints', doc('Sandbox: register the webhook endpoint'), async (req, reply) => {
        const acct = authenticate(req);
        const b = objectBody(req.body);
        const url = urlOf(b, 'url', true)!;
        const secret = strOf(b, 'secret', true, 200)!;
        if (b.livemode !== undefined && typeof b.livemode !== 'boolean') throw badParam('livemode', 'livemode must be a boolean.');
        return send(reply, await svc.idempotent(acct, idemKey(req), [req.routeOptions.url, b], (tx) => svc.registerEndpoint(tx, acct, { url, secret, livemode: b.livemode as boolean | undefined })));
      });

      s.post('/v1/payments', doc('Sandbox: create a payment'), async (req, reply) => {
        const acct = authenticate(req);
        const b = objectBody(req.body);
        const input = {
          amount: amountOf(b, 'amount', true)!,
          currency: currencyOf(b),
          reference: strOf(b, 'reference', false),
          captureMethod: b.captureMethod as 'manual' | 'automatic' | undefined,
          returnUrl: urlOf(b, 'returnUrl', false),
          metadata: metadataOf(b),
        };
        if (input.captureMethod !== undefined && input.captureMethod !== 'manual' && input.captureMethod !== 'automatic') throw badParam('captureMethod', 'captureMethod must be "manual" or "automatic".');
        return send(reply, await svc.createPaymentIdempotent(acct, idemKey(req), [req.routeOptions.url, b], input));
      });

      s.get<P>('/v1/payments/:id', doc('Sandbox: a payment'), async (req, reply) => {
        const acct = authenticate(req);
        const p = await loadPayment(opts.db, req.params.id, { accountId: acct });
        if (!p) throw notFound('payment', req.params.id);
        return send(reply, { status: 200, body: svc.pay(p) });
      });

      s.post<P>('/v1/payments/:id/update', doc('Sandbox: change the amount before payment'), async (req, reply) => {
        const acct = authenticate(req);
        const b = objectBody(req.body);
        const amount = amountOf(b, 'amount', true)!;
        return send(reply, await svc.idempotent(acct, idemKey(req), [req.url, b], (tx) => svc.updateAmount(tx, acct, req.params.id, amount)));
      });

      // A storefront calls confirm from its own page, possibly on another origin than the sandbox (SANDBOX_PSP_URL):
      // CORS for any origin, without credentials (the clientSecret in the body authenticates it), on every answer.
      const storefrontCors = {
        onRequest: (_req: FastifyRequest, reply: FastifyReply, done: () => void) => {
          reply.header('Access-Control-Allow-Origin', '*');
          done();
        },
      };
      s.options<P>('/v1/payments/:id/confirm', { ...storefrontCors, schema: { tags: ['sandbox'], hide: true } }, async (_req, reply) =>
        reply.code(204).header('Access-Control-Allow-Methods', 'POST').header('Access-Control-Allow-Headers', 'content-type, idempotency-key').header('Access-Control-Max-Age', '600').send(),
      );
      s.post<P>('/v1/payments/:id/confirm', { ...doc('Sandbox: confirm with a card (authenticated by clientSecret)'), ...storefrontCors }, async (req, reply) => {
        const b = objectBody(req.body);
        const clientSecret = strOf(b, 'clientSecret', true)!;
        const card = cardOf(b);
        const payer = payerOf(b);
        const p0 = await loadPayment(opts.db, req.params.id);
        if (!p0) throw notFound('payment', req.params.id);
        if (p0.clientSecret !== clientSecret) throw new SbxError('authentication', 'invalid_client_secret', 'The clientSecret does not match this payment.');
        return send(
          reply,
          await svc.idempotent(p0.accountId, idemKey(req), [req.url, b], async (tx) => svc.confirmResult(await svc.confirm(tx, await svc.mustLoad(tx, p0.id), card, payer))),
        );
      });

      s.post<P>('/v1/payments/:id/capture', doc('Sandbox: capture all or part of the capturable amount'), async (req, reply) => {
        const acct = authenticate(req);
        const b = objectBody(req.body, true);
        const amount = amountOf(b, 'amount', false);
        return send(reply, await svc.captureIdempotent(acct, idemKey(req), [req.url, b], req.params.id, amount));
      });

      s.post<P>('/v1/payments/:id/cancel', doc('Sandbox: cancel a payment / release the authorization'), async (req, reply) => {
        const acct = authenticate(req);
        const b = objectBody(req.body, true);
        return send(reply, await svc.cancelIdempotent(acct, idemKey(req), [req.url, b], req.params.id));
      });

      s.post('/v1/refunds', doc('Sandbox: refund a captured payment'), async (req, reply) => {
        const acct = authenticate(req);
        const b = objectBody(req.body);
        const payment = strOf(b, 'payment', true)!;
        const amount = amountOf(b, 'amount', true)!;
        return send(reply, await svc.createRefundIdempotent(acct, idemKey(req), [req.url, b], payment, amount));
      });

      s.get<P>('/v1/refunds/:id', doc('Sandbox: a refund'), async (req, reply) => send(reply, await svc.getRefund(authenticate(req), req.params.id)));

      s.post('/v1/accounts', doc('Sandbox: create a merchant account'), async (req, reply) => {
        const acct = authenticate(req);
        const b = objectBody(req.body);
        const input = { reference: strOf(b, 'reference', false), name: strOf(b, 'name', false), metadata: metadataOf(b) };
        return send(reply, await svc.idempotent(acct, idemKey(req), [req.url, b], (tx) => svc.createAccount(tx, acct, input)));
      });

      s.get<P>('/v1/accounts/:id', doc('Sandbox: a merchant account'), async (req, reply) => send(reply, await svc.getAccount(authenticate(req), req.params.id)));

      s.post('/v1/transfers', doc('Sandbox: transfer to an active merchant account'), async (req, reply) => {
        const acct = authenticate(req);
        const b = objectBody(req.body);
        const input = { amount: amountOf(b, 'amount', true)!, currency: currencyOf(b), destination: strOf(b, 'destination', true)!, transferGroup: strOf(b, 'transferGroup', false), metadata: metadataOf(b) };
        return send(reply, await svc.idempotent(acct, idemKey(req), [req.url, b], (tx) => svc.createTransfer(tx, acct, input)));
      });

      s.get<P>('/v1/transfers/:id', doc('Sandbox: a transfer'), async (req, reply) => send(reply, await svc.getTransfer(authenticate(req), req.params.id)));

      s.post<P>('/v1/transfers/:id/reversals', doc('Sandbox: reverse (part of) a transfer'), async (req, reply) => {
        const acct = authenticate(req);
        const b = objectBody(req.body);
        const amount = amountOf(b, 'amount', true)!;
        return send(reply, await svc.idempotent(acct, idemKey(req), [req.url, b], (tx) => svc.reverseTransfer(tx, acct, req.params.id, amount)));
      });

      s.get<P>('/v1/customers/from-payment/:id', doc('Sandbox: the payer recorded at confirmation'), async (req, reply) => send(reply, await svc.customerFromPayment(authenticate(req), req.params.id)));

      // ---- browser pages ----
      const form = { config: { allowForm: true }, schema: { tags: ['sandbox'], hide: true } };
      const page = { schema: { tags: ['sandbox'], hide: true } };
      const field = (req: FastifyRequest, name: string): string => {
        const v = (req.body as Body | undefined)?.[name];
        return typeof v === 'string' ? v : '';
      };
      const back = (reply: FastifyReply, p: Payment, error: string | null = null): FastifyReply =>
        p.returnUrl ? reply.code(303).header('Location', withTransactionId(p.returnUrl, p.id)).send() : checkoutPage(reply, svc.base, p, error);
      const pageLoad = async (id: string): Promise<Payment> => {
        const p = await loadPayment(opts.db, id);
        if (!p) throw notFound('payment', id);
        return p;
      };

      s.get<P>('/checkout/:id', page, async (req, reply) => checkoutPage(reply, svc.base, await pageLoad(req.params.id), null));

      s.post<P>('/checkout/:id/confirm', form, async (req, reply) => {
        const p0 = await pageLoad(req.params.id);
        if (field(req, 'clientSecret') !== p0.clientSecret) return errorPage(reply, 400, 'This payment form is not valid for this payment.');
        if (p0.status !== 'requires_payment_method' && p0.status !== 'requires_action') return back(reply, p0);
        const card = normaliseCard({ number: field(req, 'cardNumber'), expMonth: field(req, 'expMonth'), expYear: field(req, 'expYear'), cvc: field(req, 'cvc') });
        const o = await opts.db.tx(async (tx) => svc.confirm(tx, await svc.mustLoad(tx, p0.id), card));
        if (o.kind === 'requires_action') {
          // the shop's cancel URL the payment form carries, so the challenge page offers a way back (never stored)
          const cancelUrl = field(req, 'cancelUrl');
          const q = isHttpUrl(cancelUrl) ? `?cancelUrl=${encodeURIComponent(cancelUrl)}` : '';
          return reply.code(303).header('Location', `${svc.base}/checkout/${p0.id}/challenge${q}`).send();
        }
        const retry = o.kind === 'rejected' || (o.kind === 'declined' && !o.final);
        if (retry && field(req, 'origin') === 'checkout') {
          return checkoutPage(reply, svc.base, o.payment, o.message, { number: field(req, 'cardNumber').slice(0, 30), expMonth: field(req, 'expMonth').slice(0, 4), expYear: field(req, 'expYear').slice(0, 4) });
        }
        return back(reply, o.payment, o.kind === 'authorized' ? null : o.message);
      });

      s.get<P>('/checkout/:id/challenge', page, async (req, reply) => {
        const cancelUrl = (req.query as Record<string, unknown>).cancelUrl;
        return challengePage(reply, svc.base, await pageLoad(req.params.id), typeof cancelUrl === 'string' && isHttpUrl(cancelUrl) ? cancelUrl : null);
      });

      s.post<P>('/checkout/:id/challenge', form, async (req, reply) => {
        const p0 = await pageLoad(req.params.id);
        const outcome = field(req, 'outcome');
        if (outcome !== 'complete' && outcome !== 'fail') return errorPage(reply, 400, 'Choose "Complete" or "Fail".');
        if (p0.status !== 'requires_action') return back(reply, p0);
        const o = await opts.db.tx(async (tx) => svc.completeChallenge(tx, await svc.mustLoad(tx, p0.id), outcome));
        return back(reply, o.payment, o.kind === 'declined' ? o.message : null);
      });

      const returnUrlOf = (req: FastifyRequest): string | null => {
        const r = (req.query as Record<string, unknown>).returnUrl;
        return typeof r === 'string' && isHttpUrl(r) ? r : null;
      };
      type A = { Params: { accountId: string } };
      s.get<A>('/onboarding/:accountId', page, async (req, reply) => {
        const a = (await opts.db.query('SELECT * FROM sandbox_accounts WHERE id=$1', [req.params.accountId])).rows[0];
        if (!a) throw notFound('account', req.params.accountId);
        return onboardingPage(reply, svc.base, a, returnUrlOf(req));
      });
      s.post<A>('/onboarding/:accountId', form, async (req, reply) => {
        const outcome = field(req, 'outcome');
        if (outcome !== 'complete' && outcome !== 'fail') return errorPage(reply, 400, 'Choose "Complete" or "Fail".');
        const a = await svc.finishOnboarding(req.params.accountId, outcome);
        if (!a) throw notFound('account', req.params.accountId);
        const ret = returnUrlOf(req);
        return ret ? reply.code(303).header('Location', ret).send() : onboardingPage(reply, svc.base, a, null);
      });

      await expressRoutes(s, opts); // Sandbox Express widget and dialog (src/sandbox/express.ts)
    },
    { prefix: SANDBOX_PREFIX },
  );
}
