/**
 * Builds the Fastify app: parsers, request ids, error format, OpenAPI, then every route group.
 * Route files stay thin: parse, call a use case, map the result.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import type { SwaggerOptions } from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest, type RouteOptions } from 'fastify';
import pino from 'pino';
import qs from 'qs';
import type { AppDeps } from '../app/context.js';
import { AppError } from '../domain/errors.js';
import { inputProblem, maskSecrets, submittedSecrets, type InputProblem } from '../domain/input.js';
import { installErrorHandling, trackRoutes } from './errors.js';
import { registerRoutes } from './routes.js';

export const BODY_LIMIT = 1024 * 1024;
/** A request answered before its body was read (413, 404, ...) is drained up to this many bytes / this long first. */
export const DRAIN_LIMIT_BYTES = 32 * 1024 * 1024;
export const DRAIN_LIMIT_MS = 10_000;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route accepts application/x-www-form-urlencoded (only 4.3 and 4.4). */
    allowForm?: boolean;
    /** Extra top-level keys of every error body of this route (e.g. `isSuccessful: false`, `transfers: []`). */
    errorExtra?: (message: string) => Record<string, unknown>;
    /** How the route reports a request value refused by src/domain/input.ts (default: 400 naming the field). */
    inputError?: (problem: InputProblem, where: 'body' | 'query' | 'params') => AppError;
  }
  interface FastifyRequest {
    /** Raw request bytes, kept for JSON and form bodies (signature checks, debugging). */
    rawBody?: Buffer;
  }
}

/**
 * Secrets each request submitted (body secret fields, bearer token): masked in its error bodies and logged errors.
 * Collected on first use: most requests never produce an error, and the walk over the body is not free.
 */
const submitted = new WeakMap<object, () => string[]>();
const secretsOf = (raw: object): string[] => submitted.get(raw)?.() ?? [];

function bearerOf(headers: Record<string, unknown>): string[] {
  const m = /^\s*Bearer\s+(\S+)/i.exec(String(headers.authorization ?? ''));
  return m ? [m[1]!] : [];
}

/** Logged errors: pino's serializer, without SQL parameter values, with the request's submitted secrets masked. */
function maskedErrSerializer(rawReq: object): (err: Error) => unknown {
  return (err) => {
    const o = pino.stdSerializers.err(err) as unknown as Record<string, unknown>;
    if (o && typeof o === 'object' && 'params' in o) o.params = '[not logged]';
    const secrets = secretsOf(rawReq);
    return secrets.length > 0 ? JSON.parse(maskSecrets(JSON.stringify(o), secrets)) : o;
  };
}

export async function buildServer(deps: AppDeps): Promise<FastifyInstance> {
  const secretKeys = new Set(deps.connectors.modules.flatMap((m) => m.secretFields));
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.log as unknown as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    routerOptions: { ignoreTrailingSlash: true },
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    childLoggerFactory: (logger, bindings, opts, rawReq) => logger.child(bindings, { ...opts, serializers: { ...opts.serializers, err: maskedErrSerializer(rawReq) } }),
  });

  app.addHook('onRequest', async (req, reply) => {
    reply.header('X-Request-Id', req.id);
    // A body without Content-Type is parsed as JSON (sync-api.md 2.1).
    if (req.headers['content-type'] === undefined && (req.headers['content-length'] ?? '0') !== '0') {
      req.headers['content-type'] = 'application/json';
    }
  });

  app.removeAllContentTypeParsers();
  const parseJson = (req: { rawBody?: Buffer }, body: Buffer, done: (err: Error | null, value?: unknown) => void): void => {
    (req as { rawBody?: Buffer }).rawBody = body;
    if (body.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(body.toString('utf8')));
    } catch {
      done(new AppError('INVALID_REQUEST', 'The request body is not valid JSON.'));
    }
  };
  app.addContentTypeParser(['application/json', 'application/vnd.api+json'], { parseAs: 'buffer' }, parseJson);
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer' }, (req, body, done) => {
    (req as { rawBody?: Buffer }).rawBody = body as Buffer;
    try {
      done(null, qs.parse((body as Buffer).toString('utf8'), { depth: 10, arrayLimit: 1000, parameterLimit: 10000, allowDots: false }));
    } catch {
      done(new AppError('INVALID_REQUEST', 'The request body is not valid form data.'));
    }
  });
  app.addHook('preValidation', async (req) => {
    const ct = String(req.headers['content-type'] ?? '').toLowerCase();
    if (ct.startsWith('application/x-www-form-urlencoded') && !req.routeOptions.config.allowForm) {
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'Content type "application/x-www-form-urlencoded" is not accepted here.');
    }
  });

  // One guard for every route (src/domain/input.ts): U+0000 anywhere, absurd nesting, absurd array sizes → 400.
  // Root-level, so it runs before any route's own hooks and before anything is stored or stringified.
  app.addHook('preValidation', async (req) => {
    const parts: Array<['body' | 'query' | 'params', unknown, string]> = [
      ['params', req.params, 'Path parameter'],
      ['query', req.query, 'Query parameter'],
      ['body', Buffer.isBuffer(req.body) ? undefined : req.body, 'Field'],
    ];
    for (const [where, value, label] of parts) {
      const problem = inputProblem(value, label);
      if (problem) throw (req.routeOptions.config.inputError ?? defaultInputError)(problem, where);
    }
    let found: string[] | undefined;
    submitted.set(req.raw, () => (found ??= [...submittedSecrets(req.body, secretKeys), ...bearerOf(req.headers)]));
  });

  // A response sent before the request body was read (413 on a too large body, an early 4xx) would close the
  // connection under the still uploading client, which then sees a reset instead of the answer: read the rest first.
  app.addHook('onSend', async (req, reply, payload) => {
    if (!req.raw.complete && !req.raw.readableEnded) await drainRequest(req.raw, DRAIN_LIMIT_BYTES, DRAIN_LIMIT_MS);
    return reply.statusCode >= 400 ? maskedPayload(req, payload) : payload;
  });

  installErrorHandling(app);
  trackRoutes(app);

  lazySwagger(app, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Open ACP Pay', version: '0.1.0', description: "Payment app server for Spryker's App Composition Platform payment contract." },
      servers: [{ url: deps.config.appBaseUrl }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });

  await registerRoutes(app, deps);
  return app;
}

const requireLazily = createRequire(import.meta.url);
type SwaggerPlugin = (instance: unknown, opts: SwaggerOptions, done: (err?: Error) => void) => void;
type Hook = (...args: unknown[]) => unknown;

/**
 * `app.swagger()` (the OpenAPI document of /openapi.json) by @fastify/swagger, loaded on the first call instead of at
 * start-up (README "Benchmark": about 60 ms of start-up CPU and 5 MB of memory, mostly its YAML library, for a
 * document most processes never serve). The routes and child instances are recorded as they are added; the first
 * call runs the plugin against a small stand-in for the instance that replays them into its hooks, as a registration
 * before the routes would have, and keeps the document function it decorates.
 */
function lazySwagger(app: FastifyInstance, opts: SwaggerOptions): void {
  const routes: RouteOptions[] = [];
  const instances: FastifyInstance[] = [];
  app.addHook('onRoute', (route) => {
    routes.push(route);
  });
  app.addHook('onRegister', (instance) => {
    instances.push(instance);
  });
  let document: FastifyInstance['swagger'] | undefined;
  const load = (): FastifyInstance['swagger'] => {
    const { fastifySwagger } = requireLazily('@fastify/swagger') as { fastifySwagger: SwaggerPlugin };
    const hooks = new Map<string, Hook>();
    let decorated: FastifyInstance['swagger'] | undefined;
    const standIn = {
      addHook: (name: string, fn: Hook) => void hooks.set(name, fn),
      decorate: (_name: string, fn: FastifyInstance['swagger']) => void (decorated = fn),
      getSchemas: () => app.getSchemas(),
    };
    let failed: Error | undefined;
    fastifySwagger(standIn, { ...opts }, (err) => (failed = err));
    if (failed) throw failed;
    for (const route of routes) hooks.get('onRoute')?.(route);
    for (const instance of instances) void hooks.get('onRegister')?.(instance);
    hooks.get('onReady')?.(() => undefined); // its onReady hook takes only `done`
    if (!decorated) throw new Error('@fastify/swagger did not decorate the instance');
    return decorated;
  };
  app.decorate('swagger', ((o?: { yaml?: boolean }) => (document ??= load())(o as { yaml: boolean })) as FastifyInstance['swagger']);
}

/** No error body ever echoes a secret the request submitted (sync-api.md 3.1), whatever produced the message. */
function maskedPayload(req: FastifyRequest, payload: unknown): unknown {
  if (typeof payload !== 'string') return payload;
  const secrets = [...new Set([...secretsOf(req.raw), ...bearerOf(req.headers)])];
  return secrets.length > 0 ? maskSecrets(payload, secrets) : payload;
}

function defaultInputError(problem: InputProblem): AppError {
  if (problem.kind === 'depth') return new AppError('INVALID_REQUEST', problem.message);
  return new AppError('VALIDATION_FAILED', problem.message, problem.field ? { field: problem.field } : {});
}

/** Reads and discards the rest of a request body (at most maxBytes, at most maxMs); resolves when done or given up. */
function drainRequest(raw: IncomingMessage, maxBytes: number, maxMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (raw.complete || raw.readableEnded || raw.destroyed) return resolve();
    let seen = 0;
    const done = (): void => {
      clearTimeout(timer);
      raw.off('data', onData);
      raw.off('end', done);
      raw.off('close', done);
      raw.off('error', done);
      resolve();
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > maxBytes) done();
    };
    const timer = setTimeout(done, maxMs);
    raw.on('data', onData);
    raw.on('end', done);
    raw.on('close', done);
    raw.on('error', done);
    raw.resume();
  });
}
