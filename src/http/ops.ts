/**
 * Operational endpoints (spec README "Operational endpoints"): /health, /ready, /metrics, /openapi.json,
 * /asyncapi.json. None needs a token. Also records per-route request metrics for every response.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Gauge } from 'prom-client';
import type { AppDeps } from '../app/context.js';
import { buildAsyncApiDocument } from '../messaging/asyncapi.js';
import { outboxStats } from '../messaging/stats.js';
import { httpDuration, httpRequests, registry } from '../metrics.js';
import { pendingMigrations, pingDatabase } from '../store/db.js';
import { protectionOf } from './auth.js';

/**
 * A readiness probe: resolves null when fine, else a short reason ("rabbitmq: not connected"), or `{ degraded }`:
 * named parts that do not work while the app still serves (each becomes `checks["channel <name>"]` =
 * `degraded: <reason>` and a `degraded` entry; /ready stays 200).
 */
export type ReadinessResult = string | null | { degraded: Record<string, string> };
export type ReadinessCheck = () => Promise<ReadinessResult> | ReadinessResult;

const readinessChecks = new WeakMap<AppDeps, Map<string, ReadinessCheck>>();

/**
 * Registers (or replaces) a named readiness check for one app instance, e.g. the message transport:
 * `addReadinessCheck(deps, 'transport', () => (connected ? null : 'rabbitmq: not connected'))`.
 * With no 'transport' check registered, the `local` transport counts as connected (it is the database)
 * and other transports report `unknown` without failing readiness.
 */
export function addReadinessCheck(deps: AppDeps, name: string, check: ReadinessCheck): void {
  let m = readinessChecks.get(deps);
  if (!m) readinessChecks.set(deps, (m = new Map()));
  m.set(name, check);
}

function gauge(name: string, help: string): Gauge {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Gauge;
  return new Gauge({ name, help, registers: [registry] });
}

const outboxPendingGauge = gauge('outbox_pending', 'Outbox rows not yet delivered (state pending), computed at scrape time');
const outboxDeadGauge = gauge('outbox_dead', 'Outbox rows that gave up (state dead), computed at scrape time');
const outboxOldestGauge = gauge('outbox_oldest_pending_age_seconds', 'Age in seconds of the oldest pending outbox row (0 when none)');

export async function opsRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { db, config } = deps;

  app.addHook('onResponse', async (req: FastifyRequest, reply: FastifyReply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const method = req.method;
    httpRequests.inc({ route, method, status: String(reply.statusCode) });
    httpDuration.observe({ route, method }, reply.elapsedTime / 1000);
  });

  const opsTag = { tags: ['operations'] };

  app.get('/health', { schema: { ...opsTag, summary: 'Process is up', response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } }, async () => ({
    status: 'ok',
  }));

  app.get(
    '/ready',
    {
      schema: {
        ...opsTag,
        summary: 'Database reachable, migrations applied, message transport connected',
        response: {
          200: {
            type: 'object',
            properties: {
              status: { type: 'string' },
              checks: { type: 'object', additionalProperties: { type: 'string' } },
              degraded: { type: 'array', items: { type: 'string' }, description: 'Parts that do not work while the app still serves, e.g. "channel payment-events" (RabbitMQ: no queue bound)' },
            },
          },
          503: {
            type: 'object',
            properties: {
              status: { type: 'string' },
              checks: { type: 'object', additionalProperties: { type: 'string' } },
              reasons: { type: 'array', items: { type: 'string' } },
            },
          },
        },
      },
    },
    async (_req, reply) => {
      const checks: Record<string, string> = {};
      const reasons: string[] = [];
      const degraded: string[] = [];
      try {
        await pingDatabase(db);
        checks.database = 'ok';
        const pending = await pendingMigrations(db, deps.connectors.migrationDirs());
        if (pending === 0) checks.migrations = 'ok';
        else {
          checks.migrations = `${pending} pending`;
          reasons.push(`migrations: ${pending} pending`);
        }
      } catch (err) {
        checks.database = 'unreachable';
        reasons.push(`database: unreachable (${(err as Error).message.split('\n')[0]})`);
      }
      if (deps.secrets.undecryptable.size > 0) {
        const list = [...deps.secrets.undecryptable].map(([t, k]) => `"${t}" (key id "${k}")`).join(', ');
        checks.secrets = `undecryptable: ${list}`;
        reasons.push(`secrets: tenant secrets cannot be decrypted: ${list}`);
      }
      const extra = readinessChecks.get(deps) ?? new Map<string, ReadinessCheck>();
      if (!extra.has('transport')) checks.transport = config.messageTransport === 'local' ? 'ok' : 'unknown';
      for (const [name, check] of extra) {
        try {
          const problem = await check();
          if (problem !== null && typeof problem === 'object') {
            checks[name] = 'degraded';
            for (const [part, why] of Object.entries(problem.degraded)) {
              checks[`channel ${part}`] = `degraded: ${why}`;
              degraded.push(`channel ${part}`);
            }
            continue;
          }
          checks[name] = problem === null ? 'ok' : problem;
          if (problem !== null) reasons.push(`${name}: ${problem}`);
        } catch (err) {
          checks[name] = 'failed';
          reasons.push(`${name}: ${(err as Error).message}`);
        }
      }
      if (reasons.length > 0) return reply.code(503).send({ status: 'unavailable', checks, reasons });
      return degraded.length > 0 ? { status: 'ready', checks, degraded } : { status: 'ready', checks };
    },
  );

  app.get('/metrics', { schema: { ...opsTag, summary: 'Prometheus metrics', produces: ['text/plain'] } }, async (req, reply) => {
    try {
      const s = await outboxStats(db);
      outboxPendingGauge.set(s.pending);
      outboxDeadGauge.set(s.dead);
      outboxOldestGauge.set(s.oldestPendingAgeSeconds);
    } catch (err) {
      req.log.warn({ err: (err as Error).message }, 'outbox stats unavailable for /metrics');
    }
    reply.type(registry.contentType);
    return registry.metrics();
  });

  let openapi: Record<string, unknown> | undefined;
  app.get('/openapi.json', { schema: { ...opsTag, summary: 'This OpenAPI 3.1 document' } }, async () => {
    openapi ??= publicOpenApi(app.swagger() as unknown as Record<string, unknown>, config.appBaseUrl);
    return openapi;
  });

  let asyncapi: Record<string, unknown> | undefined;
  app.get('/asyncapi.json', { schema: { ...opsTag, summary: 'The AsyncAPI document of the messages' } }, async () => {
    asyncapi ??= buildAsyncApiDocument(config);
    return asyncapi;
  });
}

/** Marks the endpoints that need a bearer token (connector routes are hidden where they are registered). */
export function publicOpenApi(doc: Record<string, unknown>, baseUrl?: string): Record<string, unknown> {
  const copy = structuredClone(doc) as Record<string, unknown> & { paths?: Record<string, Record<string, Record<string, unknown>>> };
  // APP_BASE_URL may be settled only after listen (PORT=0)
  if (baseUrl) copy.servers = [{ url: baseUrl }];
  const paths: Record<string, Record<string, Record<string, unknown>>> = {};
  for (const [path, item] of Object.entries(copy.paths ?? {})) {
    const templ = path.replace(/\{[^}]+\}/g, 'x');
    if (protectionOf(templ) !== null) {
      for (const op of Object.values(item)) {
        if (op && typeof op === 'object' && !('security' in op)) op.security = [{ bearer: [] }];
      }
    }
    paths[path] = item;
  }
  copy.paths = paths;
  return copy;
}
