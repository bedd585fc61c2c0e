/**
 * The one error body of sync-api.md section 3, the Fastify error handler, and 404/405 handling.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type ErrorEntry } from '../domain/errors.js';
import { isDatabaseUnavailable } from '../store/db.js';
import { SecretsUndecryptableError } from '../store/secret-errors.js';

/** Seconds a client should wait before retrying while the database is away. */
export const DATABASE_RETRY_AFTER_S = 5;

/** The 503 of a database outage: the client retries after `Retry-After` seconds; nothing of the cause is shown. */
export const databaseUnavailable = (): AppError =>
  new AppError('DATABASE_UNAVAILABLE', 'The database is temporarily unavailable. Retry later.', { status: 503, headers: { 'Retry-After': String(DATABASE_RETRY_AFTER_S) } });

export function errorBody(entries: ErrorEntry[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...extra,
    error: entries[0]!.message,
    errors: entries.map((e) => ({ ...e, detail: e.message })),
  };
}

/** Error bodies of 4.3 to 4.6 and 4.8 also carry `isSuccessful: false` and `message` (sync-api.md 3.1). */
export const failureKeys = (message: string): Record<string, unknown> => ({ isSuccessful: false, message });

export function sendAppError(reply: FastifyReply, err: AppError): FastifyReply {
  for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  if (err.status === 401) reply.header('WWW-Authenticate', 'Bearer');
  const ct = reply.getHeader('content-type');
  if (!ct) reply.type('application/json; charset=utf-8');
  const routeExtra = reply.request.routeOptions?.config?.errorExtra?.(err.entries[0]!.message) ?? {};
  return reply.code(err.status).send(errorBody(err.entries, { ...routeExtra, ...err.extra }));
}

/** Converts Ajv validation errors of Fastify's schema check into VALIDATION_FAILED naming the dot path. */
function fromValidation(err: FastifyError): AppError {
  const v = err.validation?.[0];
  if (!v) return new AppError('INVALID_REQUEST', 'The request body is not valid.');
  const base = (v.instancePath || '')
    .split('/')
    .filter(Boolean)
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : (i === 0 ? '' : '.') + p))
    .join('');
  const params = v.params as Record<string, unknown>;
  if (v.keyword === 'required') {
    const f = base ? `${base}.${String(params.missingProperty)}` : String(params.missingProperty);
    return new AppError('VALIDATION_FAILED', `Field "${f}" is required.`, { field: f });
  }
  if (!base) return new AppError('INVALID_REQUEST', 'The request body must be a JSON object.');
  return new AppError('VALIDATION_FAILED', `Field "${base}" ${v.message ?? 'is invalid'}.`, { field: base });
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof AppError) return sendAppError(reply, err);
    if (err.validation) return sendAppError(reply, fromValidation(err));
    const code = err.code;
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendAppError(reply, new AppError('PAYLOAD_TOO_LARGE', 'Request body is larger than 1 MiB.'));
    if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendAppError(reply, new AppError('UNSUPPORTED_MEDIA_TYPE', `Content type "${String(req.headers['content-type'] ?? '')}" is not accepted here.`));
    if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError) {
      return sendAppError(reply, new AppError('INVALID_REQUEST', 'The request body is not valid JSON.'));
    }
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return sendAppError(reply, new AppError('INVALID_REQUEST', 'The request is not valid.', { status: err.statusCode }));
    }
    if (err instanceof SecretsUndecryptableError) {
      req.log.error({ tenantIdentifier: err.tenantIdentifier, keyId: err.keyId, reason: err.reason }, err.message);
      return sendAppError(
        reply,
        new AppError('TENANT_SECRETS_UNDECRYPTABLE', "The tenant's stored secrets cannot be decrypted with the configured encryption keys. The operator must restore the key.", {
          status: 503,
          headers: { 'Retry-After': '60' },
        }),
      );
    }
    if (isDatabaseUnavailable(err)) {
      req.log.warn({ err: (err as Error).message, code: (err as { code?: unknown }).code }, 'database unavailable: answering 503');
      return sendAppError(reply, databaseUnavailable());
    }
    req.log.error({ err }, 'unhandled error');
    return sendAppError(reply, new AppError('INTERNAL_ERROR', `Internal error. Reference: ${req.id}`));
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    const allowed = allowedMethods(app, path);
    if (allowed.length > 0) {
      reply.header('Allow', allowed.join(', '));
      return sendAppError(reply, new AppError('METHOD_NOT_ALLOWED', `Method ${req.method} is not allowed on ${path}.`));
    }
    return sendAppError(reply, new AppError('NOT_FOUND', `No endpoint ${req.method} ${path}.`));
  });
}

const routeTables = new WeakMap<FastifyInstance, Array<{ method: string; regex: RegExp }>>();

function allowedMethods(app: FastifyInstance, path: string): string[] {
  const table = routeTables.get(app) ?? [];
  return [...new Set(table.filter((r) => r.method !== 'HEAD' && r.regex.test(path)).map((r) => r.method))];
}

/** Records every route's path pattern so unknown methods on known paths answer 405 with `Allow`. Call before registering routes. */
export function trackRoutes(app: FastifyInstance): void {
  const table: Array<{ method: string; regex: RegExp }> = [];
  routeTables.set(app, table);
  app.addHook('onRoute', (opts) => {
    const methods = Array.isArray(opts.method) ? opts.method : [opts.method];
    const pattern = opts.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z_]+/g, '[^/]+');
    for (const m of methods) table.push({ method: m, regex: new RegExp(`^${pattern}$`) });
  });
}
