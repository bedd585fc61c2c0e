/**
 * HTTP layer of the Stripe fake: authentication, Stripe-Account, idempotency, fault injection, request log, routing.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import qs from 'qs';
import { type Ctx, type Json, type KeyRec, type State, StripeError, err, expand, invalid, rand, str } from './core.js';
import * as pay from './payments.js';
import * as con from './connect.js';
import type { Webhooks } from './webhooks.js';
import { handlePage } from './pages.js';

export interface Fault {
  method?: string;
  path: string | RegExp;
  kind: 'timeout' | 'reset-after-write' | '500' | '429';
  /** How many matching requests it hits (default 1). */
  times?: number;
}

export interface LoggedRequest {
  method: string;
  path: string;
  query: Json;
  /** Parsed form body (POST) or query (GET/DELETE). */
  params: Json;
  idempotencyKey: string | null;
  /** `Stripe-Account` header (Connect), else null. */
  account: string | null;
  /** Account of the API key. */
  keyAccount: string | null;
  livemode: boolean | null;
  stripeVersion: string | null;
  status: number | null;
  replayed: boolean;
  fault: Fault['kind'] | null;
  requestId: string;
}

interface Stored {
  fingerprint: string;
  status: number;
  body: string;
  requestId: string;
}

type Handler = (c: Call) => Json;

interface Call {
  ctx: Ctx;
  key: KeyRec;
  params: Json;
  m: RegExpExecArray;
}

/** Resource name of a path (restricted-key permissions). */
function resourceOf(path: string): string {
  return path.split('/')[2] ?? '';
}

export class FakeServer {
  readonly server: http.Server;
  readonly requests: LoggedRequest[] = [];
  private faults: (Fault & { left: number })[] = [];
  private idem = new Map<string, Stored>();
  private inFlight = new Set<string>();
  private hung = new Set<http.ServerResponse>();
  private sockets = new Set<Socket>();
  private routes: [string, RegExp, Handler, string?][] = [];

  constructor(
    private state: State,
    private webhooks: Webhooks,
  ) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.defineRoutes();
  }

  injectFault(f: Fault): void {
    this.faults.push({ ...f, left: f.times ?? 1 });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Destroys the sockets of requests held by a `timeout` fault. */
  abortHungRequests(): void {
    for (const res of this.hung) res.socket?.destroy();
    this.hung.clear();
  }

  /** Forgets every stored idempotency key (Stripe prunes keys after 24 h). */
  expireIdempotencyKeys(): void {
    this.idem.clear();
  }

  async close(): Promise<void> {
    this.abortHungRequests();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  // ---------------------------------------------------------------------------------------------------------

  private route(method: string, pattern: string, h: Handler, permission?: string): void {
    const re = new RegExp(`^${pattern.replace(/:(\w+)/g, '([^/]+)')}$`);
    this.routes.push([method, re, h, permission]);
  }

  private defineRoutes(): void {
    const s = this.state;
    const w = this.webhooks;
    const pi = (c: Call) => s.get(c.ctx, c.m[1], 'payment_intent');
    // PaymentIntents
    this.route('POST', '/v1/payment_intents', (c) => pay.createPaymentIntent(s, c.ctx, c.params));
    this.route('GET', '/v1/payment_intents', (c) => s.list(c.ctx, 'payment_intent', c.params, '/v1/payment_intents'));
    this.route('GET', '/v1/payment_intents/search', (c) => pay.searchPaymentIntents(s, c.ctx, c.params));
    this.route('GET', '/v1/payment_intents/:id', (c) => pi(c).obj);
    this.route('POST', '/v1/payment_intents/:id', (c) => pay.updatePaymentIntent(s, c.ctx, pi(c), c.params));
    this.route('POST', '/v1/payment_intents/:id/confirm', (c) => pay.confirmPaymentIntent(s, c.ctx, pi(c), c.params));
    this.route('POST', '/v1/payment_intents/:id/capture', (c) => pay.capturePaymentIntent(s, c.ctx, pi(c), c.params));
    this.route('POST', '/v1/payment_intents/:id/cancel', (c) => pay.cancelPaymentIntent(s, c.ctx, pi(c), c.params));
    // Charges, PaymentMethods, ConfirmationTokens
    this.route('GET', '/v1/charges/:id', (c) => s.get(c.ctx, c.m[1], 'charge').obj);
    this.route('GET', '/v1/charges', (c) => {
      const p = str(c.params, 'payment_intent');
      return s.list(c.ctx, 'charge', c.params, '/v1/charges', (r) => !p || r.obj.payment_intent === p);
    });
    this.route('GET', '/v1/payment_methods/:id', (c) => s.get(c.ctx, c.m[1], 'payment_method').obj);
    this.route('GET', '/v1/confirmation_tokens/:id', (c) => s.get(c.ctx, c.m[1], 'confirmation_token').obj);
    this.route('POST', '/v1/test_helpers/confirmation_tokens', (c) => pay.createConfirmationToken(s, c.ctx, c.params), 'confirmation_tokens');
    this.route('POST', '/v1/confirmation_tokens', (c) => pay.createConfirmationToken(s, c.ctx, c.params));
    // Refunds
    this.route('POST', '/v1/refunds', (c) => pay.createRefund(s, c.ctx, c.params));
    this.route('GET', '/v1/refunds', (c) => pay.listRefunds(s, c.ctx, c.params));
    this.route('GET', '/v1/refunds/:id', (c) => s.get(c.ctx, c.m[1], 'refund').obj);
    this.route('POST', '/v1/refunds/:id', (c) => {
      const r = s.get(c.ctx, c.m[1], 'refund');
      r.obj.metadata = { ...r.obj.metadata, ...(c.params.metadata ?? {}) };
      return r.obj;
    });
    // Webhook endpoints
    this.route('POST', '/v1/webhook_endpoints', (c) => w.create(c.ctx, c.params));
    this.route('GET', '/v1/webhook_endpoints', (c) => s.list(c.ctx, 'webhook_endpoint', c.params, '/v1/webhook_endpoints'));
    this.route('GET', '/v1/webhook_endpoints/:id', (c) => s.get(c.ctx, c.m[1], 'webhook_endpoint').obj);
    this.route('POST', '/v1/webhook_endpoints/:id', (c) => w.update(c.ctx, c.m[1], c.params));
    this.route('DELETE', '/v1/webhook_endpoints/:id', (c) => w.remove(c.ctx, c.m[1]));
    // Events
    this.route('GET', '/v1/events/:id', (c) => s.get(c.ctx, c.m[1], 'event').obj);
    this.route('GET', '/v1/events', (c) => {
      const t = str(c.params, 'type');
      return s.list(c.ctx, 'event', c.params, '/v1/events', (r) => !t || r.obj.type === t);
    });
    // Accounts
    this.route('GET', '/v1/account', (c) => con.getAccount(s, c.ctx, c.key.acct, c.ctx.acct));
    this.route('GET', '/v1/accounts', (c) => s.list(c.ctx, 'account', c.params, '/v1/accounts', (r) => r.id !== c.ctx.acct));
    this.route('POST', '/v1/accounts', (c) => con.createAccount(s, c.ctx, c.params));
    this.route('GET', '/v1/accounts/:id', (c) => con.getAccount(s, c.ctx, c.key.acct, c.m[1]));
    this.route('POST', '/v1/accounts/:id', (c) => con.updateAccount(s, c.ctx, c.m[1], c.params));
    this.route('POST', '/v1/accounts/:id/login_links', (c) => {
      con.connectedAccount(s, c.ctx, c.m[1]);
      return { object: 'login_link', created: Math.floor(Date.now() / 1000), url: `${s.base}/express/${c.m[1]}/${rand(12)}` };
    });
    this.route('GET', '/v1/accounts/:id/capabilities', (c) => {
      const a = con.getAccount(s, c.ctx, c.key.acct, c.m[1]);
      return { object: 'list', data: Object.keys(a.capabilities).map((k) => con.capabilityObject(a, k)), has_more: false, url: `/v1/accounts/${a.id}/capabilities` };
    });
    this.route('GET', '/v1/accounts/:id/capabilities/:cap', (c) => con.capabilityObject(con.getAccount(s, c.ctx, c.key.acct, c.m[1]), c.m[2]));
    this.route('POST', '/v1/account_links', (c) => con.createAccountLink(s, c.ctx, c.params));
    // Balance, transfers
    this.route('GET', '/v1/balance', (c) => con.balanceObject(s, c.ctx));
    this.route('POST', '/v1/transfers', (c) => con.createTransfer(s, c.ctx, c.params));
    this.route('GET', '/v1/transfers', (c) => con.listTransfers(s, c.ctx, c.params));
    this.route('GET', '/v1/transfers/:id', (c) => s.get(c.ctx, c.m[1], 'transfer').obj);
    this.route('POST', '/v1/transfers/:id', (c) => {
      const t = s.get(c.ctx, c.m[1], 'transfer');
      t.obj.metadata = { ...t.obj.metadata, ...(c.params.metadata ?? {}) };
      if (c.params.description !== undefined) t.obj.description = c.params.description;
      s.emit(c.ctx, 'transfer.updated', t.obj);
      return t.obj;
    });
    this.route('POST', '/v1/transfers/:id/reversals', (c) => con.createReversal(s, c.ctx, c.m[1], c.params));
    this.route('GET', '/v1/transfers/:id/reversals', (c) => con.listReversals(s, c.ctx, c.m[1], c.params));
    this.route('GET', '/v1/transfers/:id/reversals/:rid', (c) => {
      const r = s.get(c.ctx, c.m[2], 'transfer_reversal');
      if (r.obj.transfer !== c.m[1]) throw invalid(`No such transfer reversal: '${c.m[2]}'`, { code: 'resource_missing' });
      return r.obj;
    });
  }

  // ---------------------------------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = (req.method ?? 'GET').toUpperCase();
    res.setHeader('access-control-allow-origin', '*');
    if (method === 'OPTIONS') {
      res.writeHead(204, {
        'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
        'access-control-allow-headers': 'Authorization, Content-Type, Stripe-Version, Stripe-Account, Idempotency-Key',
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    if (!url.pathname.startsWith('/v1/')) {
      try {
        if (await handlePage(this.state, method, url, raw, res)) return;
      } catch (e) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(e instanceof StripeError ? String(e.body.message) : (e as Error).message);
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    await this.api(req, res, url, method, raw);
  }

  private async api(req: http.IncomingMessage, res: http.ServerResponse, url: URL, method: string, raw: string): Promise<void> {
    const requestId = `req_${rand(14)}`;
    const query = qs.parse(url.search.slice(1), { depth: 10, arrayLimit: 1000, parameterLimit: 10_000 }) as Json;
    const body = raw ? (qs.parse(raw, { depth: 10, arrayLimit: 1000, parameterLimit: 10_000 }) as Json) : {};
    const params: Json = method === 'POST' ? body : query;
    const header = (n: string): string | null => {
      const v = req.headers[n];
      return typeof v === 'string' && v !== '' ? v : null;
    };
    const idempotencyKey = header('idempotency-key');
    const stripeAccount = header('stripe-account');
    const stripeVersion = header('stripe-version');
    const log: LoggedRequest = {
      method,
      path: url.pathname,
      query,
      params,
      idempotencyKey,
      account: stripeAccount,
      keyAccount: null,
      livemode: null,
      stripeVersion,
      status: null,
      replayed: false,
      fault: null,
      requestId,
    };
    this.requests.push(log);
    const baseHeaders: Record<string, string> = {
      'content-type': 'application/json',
      'request-id': requestId,
      'stripe-version': stripeVersion ?? this.state.apiVersion,
      'cache-control': 'no-cache, no-store',
    };
    if (idempotencyKey) baseHeaders['idempotency-key'] = idempotencyKey;
    if (stripeAccount) baseHeaders['stripe-account'] = stripeAccount;
    const send = (status: number, json: Json, extra: Record<string, string> = {}): void => {
      log.status = status;
      res.writeHead(status, { ...baseHeaders, ...extra });
      res.end(JSON.stringify(json, null, 2));
    };
    const sendError = (e: StripeError): void => send(e.status, { error: { request_log_url: `https://dashboard.stripe.com/test/logs/${requestId}`, ...e.body } });

    // 1. authentication and the acting account
    let key: KeyRec;
    let ctx: Ctx;
    try {
      key = this.authenticate(header('authorization'), method, url.pathname, params);
      log.keyAccount = key.acct;
      log.livemode = key.livemode;
      let acct = key.acct;
      if (stripeAccount && stripeAccount !== key.acct) {
        const st = this.state.accounts.get(stripeAccount);
        if (!st || st.platform !== key.acct)
          throw err(403, 'invalid_request_error', `The provided key does not have access to account '${stripeAccount}' (or that account does not exist). Application access may have been revoked.`, {
            code: 'account_invalid',
          });
        acct = stripeAccount;
      }
      ctx = { acct, livemode: key.livemode, requestId, idempotencyKey: method === 'POST' ? idempotencyKey : null };
    } catch (e) {
      sendError(e as StripeError);
      return;
    }

    // 2. fault injection
    const fault = this.faults.find(
      (f) => f.left > 0 && (!f.method || f.method.toUpperCase() === method) && (typeof f.path === 'string' ? f.path === url.pathname : f.path.test(url.pathname)),
    );
    if (fault) {
      fault.left--;
      log.fault = fault.kind;
    }
    if (fault?.kind === '429') {
      sendError(err(429, 'invalid_request_error', 'Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.', { code: 'rate_limit' }));
      return;
    }

    // 3. idempotency
    const useKey = method === 'POST' && idempotencyKey !== null;
    const scope = `${key.acct}|${ctx.acct}|${key.livemode}|${idempotencyKey}`;
    const fingerprint = JSON.stringify([method, url.pathname, sortDeep(params)]);
    if (useKey) {
      if (idempotencyKey!.length > 255) {
        sendError(invalid('Keys for idempotent requests can only be 255 characters long.', { param: 'Idempotency-Key' }));
        return;
      }
      const stored = this.idem.get(scope);
      if (stored) {
        if (stored.fingerprint !== fingerprint) {
          sendError(
            err(400, 'idempotency_error', `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`),
          );
          return;
        }
        log.replayed = true;
        if (fault?.kind === 'reset-after-write') {
          res.socket?.destroy();
          return;
        }
        if (fault?.kind === 'timeout' || fault?.kind === '500') {
          this.applyFault(fault.kind, res, scope, false, sendError);
          return;
        }
        log.status = stored.status;
        res.writeHead(stored.status, { ...baseHeaders, 'idempotent-replayed': 'true', 'original-request': stored.requestId });
        res.end(stored.body);
        return;
      }
      if (this.inFlight.has(scope)) {
        sendError(err(409, 'invalid_request_error', 'There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ' + idempotencyKey + '. Please try again later.', { code: 'idempotency_key_in_use' }));
        return;
      }
    }
    const store = (status: number, json: Json): void => {
      if (useKey) this.idem.set(scope, { fingerprint, status, body: JSON.stringify(json, null, 2), requestId });
    };

    if (fault?.kind === 'timeout' || fault?.kind === '500') {
      this.applyFault(fault.kind, res, scope, useKey, sendError, store);
      return;
    }

    // 4. execution
    let status = 200;
    let json: Json;
    const found = this.match(method, url.pathname);
    try {
      if (!found) throw err(404, 'invalid_request_error', `Unrecognized request URL (${method}: ${url.pathname}).`);
      this.authorize(key, method, url.pathname, found.permission);
      const { expand: ex, ...p } = params;
      if (key.kind === 'publishable') delete p.client_secret;
      json = found.handler({ ctx, key, params: p, m: found.m });
      json = expand(this.state, json, ex);
    } catch (e) {
      if (!(e instanceof StripeError)) {
        status = 500;
        json = { error: { type: 'api_error', message: `stripe fake bug: ${(e as Error).message}` } };
        process.stderr.write(`[stripe-fake] ${(e as Error).stack}\n`);
      } else {
        status = e.status;
        json = { error: { request_log_url: `https://dashboard.stripe.com/test/logs/${requestId}`, ...e.body } };
      }
    }
    // Stripe saves results once the endpoint started executing (not for 401/403/404-route/429).
    if (found && status !== 401 && status !== 403) store(status, json);
    if (fault?.kind === 'reset-after-write') {
      log.status = null;
      res.socket?.destroy();
      return;
    }
    send(status, json);
  }

  /** `timeout`: hold the request open, never executed; `500`: answer (and store) an api_error without executing. */
  private applyFault(kind: 'timeout' | '500', res: http.ServerResponse, scope: string, useKey: boolean, sendError: (e: StripeError) => void, store?: (status: number, json: Json) => void): void {
    if (kind === '500') {
      const e = err(500, 'api_error', 'An unknown error occurred while processing your request.');
      store?.(500, { error: e.body });
      sendError(e);
      return;
    }
    if (useKey) this.inFlight.add(scope);
    this.hung.add(res);
    res.on('close', () => {
      this.hung.delete(res);
      if (useKey) this.inFlight.delete(scope);
    });
  }

  private match(method: string, path: string): { handler: Handler; m: RegExpExecArray; permission?: string } | null {
    for (const [m, re, h, perm] of this.routes) {
      if (m !== method) continue;
      const x = re.exec(path);
      if (x) return { handler: h, m: x, permission: perm };
    }
    return null;
  }

  private authenticate(auth: string | null, method: string, path: string, params: Json): KeyRec {
    let token: string | null = null;
    if (auth?.startsWith('Bearer ')) token = auth.slice(7).trim();
    else if (auth?.startsWith('Basic ')) token = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':')[0];
    if (!token)
      throw err(401, 'invalid_request_error', 'You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. \'Authorization: Bearer YOUR_SECRET_KEY\').');
    const key = this.state.keys.get(token);
    if (!key) throw err(401, 'invalid_request_error', `Invalid API Key provided: ${token.slice(0, 8)}${'*'.repeat(Math.max(0, token.length - 12))}${token.slice(-4)}`);
    if (key.kind === 'publishable') {
      // Stripe.js calls: retrieve/confirm a PaymentIntent with its client secret, create a ConfirmationToken
      const m = /^\/v1\/payment_intents\/([^/]+)(\/confirm)?$/.exec(path);
      if (m && ((method === 'GET' && !m[2]) || (method === 'POST' && m[2]))) {
        const rec = this.state.recs.get(m[1]);
        if (!rec || rec.obj.client_secret !== params.client_secret)
          throw err(404, 'invalid_request_error', `No such payment_intent: '${m[1]}'`, { code: 'resource_missing', param: 'intent' });
        return key;
      }
      if (method === 'POST' && path === '/v1/confirmation_tokens') return key;
      throw err(401, 'invalid_request_error', 'This API call cannot be made with a publishable API key. Please use a secret API key. You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys.');
    }
    if (path === '/v1/confirmation_tokens')
      throw err(401, 'invalid_request_error', 'ConfirmationTokens are created with a publishable key (Stripe.js); use /v1/test_helpers/confirmation_tokens.');
    return key;
  }

  private authorize(key: KeyRec, method: string, path: string, permission?: string): void {
    if (key.kind !== 'restricted' || key.permissions === '*') return;
    const resource = permission ?? resourceOf(path);
    const need = method === 'GET' ? 'read' : 'write';
    const ok = key.permissions.some((p) => p === resource || p === `${resource}:write` || (need === 'read' && p === `${resource}:read`));
    if (!ok)
      throw err(
        403,
        'invalid_request_error',
        `The provided key '${key.key.slice(0, 8)}***${key.key.slice(-4)}' does not have the required permissions for this endpoint on account '${key.acct}'. Having the 'rak_${resource}_${need}' permission would allow this request to continue.`,
      );
  }
}

function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v as Json)
        .sort()
        .map((k) => [k, sortDeep((v as Json)[k])]),
    );
  return v;
}
