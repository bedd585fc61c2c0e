/**
 * Builds the Fastify app: parsers, request ids, error format, OpenAPI, then every route group.
 * Route files stay thin: parse, call a use case, map the result.
 */
import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import qs from 'qs';
import type { AppDeps } from '../app/context.js';
import { AppError } from '../domain/errors.js';
import { installErrorHandling, trackRoutes } from './errors.js';
import { registerRoutes } from './routes.js';

export const BODY_LIMIT = 1024 * 1024;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route accepts application/x-www-form-urlencoded (only 4.3 and 4.4). */
    allowForm?: boolean;
    /** Extra top-level keys of every error body of this route (e.g. `isSuccessful: false`, `transfers: []`). */
    errorExtra?: (message: string) => Record<string, unknown>;
  }
  interface FastifyRequest {
    /** Raw request bytes, kept for JSON and form bodies (signature checks, debugging). */
    rawBody?: Buffer;
  }
}

export async function buildServer(deps: AppDeps): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.log as unknown as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    routerOptions: { ignoreTrailingSlash: true },
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
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

  installErrorHandling(app);
  trackRoutes(app);

  await app.register(swagger, {
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
