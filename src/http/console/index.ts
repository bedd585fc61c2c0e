/**
 * The operator console at `/console` (issue 11, docs/console.md): server-rendered pages over the console's read
 * repositories and the operator actions of `src/app/console/actions.ts`. Encapsulated: its cookie parser, hooks,
 * error and not-found handlers apply to `/console/*` only.
 *
 * Access (session.ts): every page needs a session except the login pages and the stylesheet; every POST needs the
 * session's CSRF token (403 otherwise); actions need the `operator` role (403 for a viewer); an action without a
 * reason answers 400; an unknown id 404; a row that changed meanwhile 409 "already handled" with nothing changed.
 */
import { randomBytes } from 'node:crypto';
import cookie from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ACTIONS, type ActionName, type ActionResult } from '../../app/console/actions.js';
import { authenticateLocal } from '../../app/console/passwords.js';
import { paymentStory, tenantDetail, tenantViews } from '../../app/console/queries.js';
import type { AppDeps } from '../../app/context.js';
import { AppError } from '../../domain/errors.js';
import { PAYMENT_STATUSES, type PaymentStatus } from '../../domain/payment-status.js';
import { COMMAND_INBOX_STATUSES, OUTBOX_STATUSES, WEBHOOK_INBOX_STATUSES, type CommandInboxStatus, type OutboxStatus, type WebhookInboxStatus } from '../../domain/processing-status.js';
import { HELD_OR_FAILED_WEBHOOK_STATES, listCommands, listOutbox, listWebhooks, overview, searchPayments, type PaymentCursor } from '../../store/console-queries.js';
import { CSS, layout, Raw, type PageContext } from './html.js';
import * as pages from './pages.js';
import { accessPolicy, csrfMatches, endSession, OidcLogin, readSession, startSession, type ConsoleSession } from './session.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A console route reachable without a session (login, stylesheet). */
    consolePublic?: boolean;
  }
  interface FastifyRequest {
    consoleSession?: ConsoleSession;
  }
}

const PAGE_SIZE = 50;
const LIST_LIMIT = 200;

function first(v: unknown): string {
  if (Array.isArray(v)) return first(v[0]);
  // Control characters (a NUL byte is not even storable text) never match anything: dropped.
  return typeof v === 'string' ? v.replace(CONTROL, '').trim().slice(0, 200) : '';
}

const CONTROL = /[\u0000-\u001f\u007f]/g;
/** A path id with control characters or over 200 characters names nothing. */
const badId = (id: string): boolean => id.length > 200 || /[\u0000-\u001f\u007f]/.test(id);

function send(reply: FastifyReply, req: FastifyRequest, status: number, title: string, body: Raw, active?: PageContext['active']): FastifyReply {
  const s = req.consoleSession ?? null;
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .send(layout({ title, user: s ? { id: s.id, name: s.name, role: s.role } : null, csrf: s?.csrf ?? null, active }, body));
}

const encodeCursor = (c: PaymentCursor): string => Buffer.from(JSON.stringify([c.createdAt, c.id]), 'utf8').toString('base64url');
function decodeCursor(s: string): PaymentCursor | null {
  try {
    const v: unknown = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string' && !Number.isNaN(Date.parse(v[0]))) return { createdAt: v[0], id: v[1] };
  } catch {
    /* fall through */
  }
  return null;
}

function parseDay(s: string): Date | null {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return null;
  const d = new Date(`${s}T00:00:00Z`);
  return Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== s ? null : d;
}

function states<T extends string>(raw: string, all: readonly T[], def: readonly T[]): readonly T[] | null {
  if (raw === '') return def;
  return (all as readonly string[]).includes(raw) ? [raw as T] : null;
}

/** A `back` link inside the console, else the list page. */
function safeBack(v: unknown, def: string): string {
  const b = first(v);
  return /^\/console(\/[A-Za-z0-9/_.%-]*)?(\?[A-Za-z0-9=&_.%+-]*)?$/.test(b) ? b : def;
}

export async function consoleRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  await app.register(
    async (c) => {
      // The console is not part of the app's published API (/openapi.json).
      c.addHook('onRoute', (route) => {
        route.schema = { ...(route.schema ?? {}), hide: true };
      });
      const policy = accessPolicy(deps.config);
      if (!deps.config.console.sessionSecret && policy.loginConfigured) {
        deps.log.warn('CONSOLE_SESSION_SECRET is not set: console sessions end when this process restarts');
      }
      await c.register(cookie, { secret: deps.config.console.sessionSecret ?? randomBytes(32).toString('base64url') });
      const oidcLogin = deps.config.console.oidc ? new OidcLogin(deps.config, policy) : null;

      c.addHook('onRequest', async (req, reply) => {
        reply.header('Content-Security-Policy', "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
        reply.header('X-Frame-Options', 'DENY');
        reply.header('Referrer-Policy', 'no-referrer');
        reply.header('Cache-Control', 'no-store');
        reply.header('X-Content-Type-Options', 'nosniff');
      });

      c.addHook('preHandler', async (req, reply) => {
        if (req.routeOptions.config.consolePublic) return;
        let session = readSession(req);
        if (session?.id.startsWith('local:')) {
          // A local account removed from CONSOLE_USERS (or given another role) takes effect at the next restart.
          const user = deps.config.console.users.find((u) => `local:${u.name}` === session!.id);
          session = user ? { ...session, role: user.role } : null;
        }
        if (session?.id === 'loopback' && !policy.open) session = null;
        if (!session && policy.open) session = startSession(reply, policy, { id: 'loopback', name: 'loopback', role: 'operator' });
        if (!session) {
          if (req.method === 'GET' || req.method === 'HEAD') return reply.redirect('/console/login', 303);
          return send(reply, req, 403, 'Not signed in', pages.messagePage('Sign in first.', [['/console/login', 'Sign in']]));
        }
        req.consoleSession = session;
        if (req.method === 'POST') {
          const body = (req.body ?? {}) as Record<string, unknown>;
          if (!csrfMatches(session, body.csrf)) return send(reply, req, 403, 'Refused', pages.messagePage('The form is missing its security token or it has expired. Reload the page and try again.'));
        }
      });

      c.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
        if (err instanceof AppError && err.status < 500) return send(reply, req, err.status, 'Bad request', pages.messagePage(err.message));
        if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) return send(reply, req, err.statusCode, 'Bad request', pages.messagePage('The request is not valid.'));
        req.log.error({ err }, 'console request failed');
        reply.header('Retry-After', '5');
        return send(reply, req, 503, 'Temporarily unavailable', pages.messagePage('The database or a dependency is not reachable right now. Try again in a few seconds.'));
      });
      c.setNotFoundHandler((req, reply) => send(reply, req, 404, 'Not found', pages.messagePage('There is no such page.', [['/console', 'Overview']])));

      const notFound = (req: FastifyRequest, reply: FastifyReply, what: string) => send(reply, req, 404, 'Not found', pages.messagePage(`No ${what} with this id.`, [['/console', 'Overview']]));

      // ---- public: stylesheet and login ----
      c.get('/assets/console.css', { config: { consolePublic: true } }, async (_req, reply) => reply.type('text/css; charset=utf-8').header('Cache-Control', 'public, max-age=3600').send(CSS));

      c.get('/login', { config: { consolePublic: true } }, async (req, reply) => {
        if (policy.open) return reply.redirect('/console', 303);
        return send(reply, req, 200, 'Sign in', pages.loginPage({ local: deps.config.console.users.length > 0, oidc: oidcLogin !== null, error: null }));
      });

      c.post('/login', { config: { consolePublic: true, allowForm: true } }, async (req, reply) => {
        const body = (req.body ?? {}) as Record<string, unknown>;
        const name = first(body.user);
        const password = typeof body.password === 'string' ? body.password.slice(0, 1000) : '';
        const user = deps.config.console.users.length > 0 && name !== '' ? await authenticateLocal(deps.config.console.users, name, password) : null;
        if (!user) {
          req.log.info({ consoleUser: name.slice(0, 100) }, 'console login refused');
          return send(reply, req, 401, 'Sign in', pages.loginPage({ local: deps.config.console.users.length > 0, oidc: oidcLogin !== null, error: 'Unknown user or wrong password.' }));
        }
        startSession(reply, policy, { id: `local:${user.name}`, name: user.name, role: user.role });
        req.log.info({ consoleUser: user.name }, 'console login');
        return reply.redirect('/console', 303);
      });

      c.get('/auth/oidc', { config: { consolePublic: true } }, async (req, reply) => {
        if (!oidcLogin) return notFound(req, reply, 'login provider');
        try {
          return reply.redirect(await oidcLogin.start(reply), 303);
        } catch (err) {
          req.log.warn({ err: (err as Error).message }, 'console OIDC discovery failed');
          reply.header('Retry-After', '5');
          return send(reply, req, 503, 'Sign in', pages.loginPage({ local: deps.config.console.users.length > 0, oidc: true, error: 'The sign-in provider is not reachable right now.' }));
        }
      });

      c.get('/auth/callback', { config: { consolePublic: true } }, async (req, reply) => {
        if (!oidcLogin) return notFound(req, reply, 'login provider');
        let who;
        try {
          who = await oidcLogin.finish(req, reply);
        } catch (err) {
          req.log.info({ err: (err as Error).message }, 'console OIDC login refused');
          return send(reply, req, 401, 'Sign in', pages.loginPage({ local: deps.config.console.users.length > 0, oidc: true, error: 'Single sign-on failed; start again.' }));
        }
        startSession(reply, policy, who);
        req.log.info({ consoleUser: who.id }, 'console login');
        // A page (not a redirect) so that the next request is a same-site navigation and carries the Strict cookie.
        return reply
          .type('text/html; charset=utf-8')
          .send('<!doctype html><html><head><meta http-equiv="refresh" content="0;url=/console"><title>Signed in</title></head><body><p><a href="/console">Continue to the console</a></p></body></html>');
      });

      c.post('/logout', { config: { allowForm: true } }, async (_req, reply) => {
        endSession(reply, policy);
        return reply.redirect(policy.open ? '/console' : '/console/login', 303);
      });

      // ---- pages ----
      c.get('/', async (req, reply) => {
        const now = new Date();
        const since = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
        return send(reply, req, 200, 'Overview', pages.overviewPage(await overview(deps.db, since, now), since), 'overview');
      });

      c.get('/payments', async (req, reply) => {
        const qs = (req.query ?? {}) as Record<string, unknown>;
        const f: pages.SearchForm = { q: first(qs.q), tenant: first(qs.tenant), status: first(qs.status), from: first(qs.from), to: first(qs.to) };
        const errors: string[] = [];
        const from = f.from === '' ? undefined : (parseDay(f.from) ?? (errors.push('"From" must be a date (YYYY-MM-DD).'), undefined));
        const toDay = f.to === '' ? undefined : (parseDay(f.to) ?? (errors.push('"To" must be a date (YYYY-MM-DD).'), undefined));
        const status = f.status === '' ? undefined : (PAYMENT_STATUSES as readonly string[]).includes(f.status) ? (f.status as PaymentStatus) : (errors.push(`Unknown status "${f.status}".`), undefined);
        const afterRaw = first(qs.after);
        const after = afterRaw === '' ? undefined : (decodeCursor(afterRaw) ?? (errors.push('The page link is not valid; showing the newest payments.'), undefined));
        const r = await searchPayments(deps.db, {
          ...(f.q !== '' ? { q: f.q } : {}),
          ...(f.tenant !== '' ? { tenant: f.tenant } : {}),
          ...(status ? { status } : {}),
          ...(from ? { from } : {}),
          ...(toDay ? { to: new Date(toDay.getTime() + 86_400_000) } : {}),
          ...(after ? { after } : {}),
          limit: PAGE_SIZE,
        });
        const last = r.items[r.items.length - 1];
        let next: string | null = null;
        if (r.more && last) {
          const params = new URLSearchParams({ ...Object.fromEntries(Object.entries(f).filter(([, v]) => v !== '')), after: encodeCursor(last.cursor) });
          next = `/console/payments?${params.toString()}`;
        }
        return send(reply, req, 200, 'Payments', pages.paymentsPage(f, r.items, next, errors.length ? errors.join(' ') : null), 'payments');
      });

      c.get('/payments/:id', async (req, reply) => {
        const id = (req.params as { id: string }).id;
        if (badId(id)) return notFound(req, reply, 'payment');
        const story = await paymentStory(deps, id);
        if (!story) return notFound(req, reply, 'payment');
        const s = req.consoleSession!;
        return send(reply, req, 200, `Payment ${story.payment.orderReference ?? story.payment.transactionId}`, pages.paymentPage(story, s.csrf, s.role === 'operator'), 'payments');
      });

      c.get('/webhooks', async (req, reply) => {
        const qs = (req.query ?? {}) as Record<string, unknown>;
        const state = first(qs.state);
        const tenant = first(qs.tenant);
        const st = states<WebhookInboxStatus>(state, WEBHOOK_INBOX_STATUSES, HELD_OR_FAILED_WEBHOOK_STATES);
        const rows = st ? await listWebhooks(deps.db, { states: st, ...(tenant ? { tenant } : {}), limit: LIST_LIMIT }) : [];
        const s = req.consoleSession!;
        const body = pages.webhookTable(rows, s.csrf, s.role === 'operator', '/console/webhooks');
        return send(reply, req, 200, 'Webhook inbox', concat(pages.stateFilter('/console/webhooks', WEBHOOK_INBOX_STATUSES, state, tenant, 'held and failed'), st ? body : pages.messagePage(`Unknown state "${state}".`)), 'webhooks');
      });

      c.get('/outbox', async (req, reply) => {
        const qs = (req.query ?? {}) as Record<string, unknown>;
        const state = first(qs.state);
        const tenant = first(qs.tenant);
        const st = states<OutboxStatus>(state, OUTBOX_STATUSES, ['pending', 'dead']);
        const rows = st ? await listOutbox(deps.db, { states: st, ...(tenant ? { tenant } : {}), limit: LIST_LIMIT }) : [];
        const s = req.consoleSession!;
        const body = pages.outboxTable(rows, s.csrf, s.role === 'operator', '/console/outbox');
        return send(reply, req, 200, 'Outbox', concat(pages.stateFilter('/console/outbox', OUTBOX_STATUSES, state, tenant, 'pending and dead'), st ? body : pages.messagePage(`Unknown state "${state}".`)), 'outbox');
      });

      c.get('/commands', async (req, reply) => {
        const qs = (req.query ?? {}) as Record<string, unknown>;
        const state = first(qs.state);
        const tenant = first(qs.tenant);
        const st = state === '' ? undefined : states<CommandInboxStatus>(state, COMMAND_INBOX_STATUSES, []);
        const rows = st === null ? [] : await listCommands(deps.db, { ...(st ? { states: st } : {}), ...(tenant ? { tenant } : {}), limit: LIST_LIMIT });
        const s = req.consoleSession!;
        const body = pages.commandTable(rows, s.csrf, s.role === 'operator', '/console/commands');
        return send(reply, req, 200, 'Command inbox', concat(pages.stateFilter('/console/commands', COMMAND_INBOX_STATUSES, state, tenant, 'any'), st === null ? pages.messagePage(`Unknown state "${state}".`) : body), 'commands');
      });

      c.get('/tenants', async (req, reply) => send(reply, req, 200, 'Tenants', pages.tenantsPage(await tenantViews(deps)), 'tenants'));

      c.get('/tenants/:id', async (req, reply) => {
        const tid = (req.params as { id: string }).id;
        if (badId(tid)) return notFound(req, reply, 'tenant');
        const d = await tenantDetail(deps, tid);
        if (!d) return notFound(req, reply, 'tenant');
        return send(reply, req, 200, `Tenant ${d.tenant.id}`, pages.tenantPage(d.tenant, d.merchants, d.transfers), 'tenants');
      });

      // ---- actions ----
      const action = (path: string, name: ActionName, what: string, list: string) =>
        c.post(path, { config: { allowForm: true } }, async (req, reply) => {
          const s = req.consoleSession!;
          if (s.role !== 'operator') return send(reply, req, 403, 'Refused', pages.messagePage('Only operators can act; your role is viewer.'));
          const body = (req.body ?? {}) as Record<string, unknown>;
          const id = (req.params as { id: string }).id;
          const result: ActionResult = badId(id) ? { kind: 'not-found' } : await ACTIONS[name](deps, { id: s.id }, id, body.reason);
          const back = safeBack(body.back, list);
          req.log.info({ consoleUser: s.id, action: name, target: id, result: result.kind }, 'console action');
          return answerAction(reply, req, result, what, id, back);
        });
      action('/webhooks/:id/replay', 'webhook.replay', 'webhook', '/console/webhooks');
      action('/webhooks/:id/discard', 'webhook.discard', 'webhook', '/console/webhooks');
      action('/outbox/:id/requeue', 'outbox.requeue', 'outbox message', '/console/outbox');
      action('/outbox/:id/discard', 'outbox.discard', 'outbox message', '/console/outbox');
      action('/commands/:id/retry', 'command.retry', 'command', '/console/commands');
    },
    { prefix: '/console' },
  );
}

function concat(...parts: Raw[]): Raw {
  return new Raw(parts.map((p) => p.value).join(''));
}

function answerAction(reply: FastifyReply, req: FastifyRequest, r: ActionResult, what: string, id: string, back: string): FastifyReply {
  switch (r.kind) {
    case 'bad-reason':
      return send(reply, req, 400, 'Reason required', pages.messagePage('Give a reason (1 to 1000 characters): it is written to the audit log.', [[back, 'Back']]));
    case 'not-found':
      return send(reply, req, 404, 'Not found', pages.messagePage(`No ${what} with this id.`, [[back, 'Back']]));
    case 'already-handled':
      return send(reply, req, 409, 'Already handled', pages.messagePage(`Already handled: the ${what} ${id} is now ${r.state}. Nothing was changed.`, [[back, 'Back']]));
    case 'not-allowed':
      return send(reply, req, 409, 'Not allowed', pages.messagePage(r.message, [[back, 'Back']]));
    case 'done': {
      const links: Array<[string, string]> = [[back, 'Back']];
      if (r.paymentId) links.push([`/console/payments/${encodeURIComponent(r.paymentId)}`, 'The payment']);
      return send(reply, req, 200, 'Done', pages.messagePage(`Done: the ${what} ${id} is now ${r.state}. The action is in the audit log.`, links));
    }
  }
}
