/**
 * `POST /private/configure` and `POST /private/disconnect` (sync-api.md 4.1, 4.2) and their bare aliases
 * `/configure`, `/disconnect` (same handlers). Authentication is the hook of src/http/auth.ts.
 *
 * Both routes live in their own encapsulated context with their own body parsers: configure turns an
 * unparseable JSON body into its 443 answer (not the generic 400), disconnect ignores any body.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { configureTenant, UnparseableBody } from '../app/configure.js';
import type { AppDeps } from '../app/context.js';
import { disconnectTenant } from '../app/disconnect.js';
import { resolveLocale } from '../i18n/messages.js';
import { tenantFromHeaders } from './tenant.js';


const tenantHeaders = {
  type: 'object',
  properties: {
    'x-tenant-identifier': { type: 'string', description: 'The tenant (fallback: X-Store-Reference)' },
    'x-store-reference': { type: 'string', description: 'Legacy tenant header' },
    'accept-language': { type: 'string', description: 'de / de-DE / de_DE select German messages; anything else English' },
  },
} as const;

const errorBodySchema = {
  type: 'object',
  description: 'Error body (sync-api.md 3)',
  additionalProperties: true,
} as const;

const configureSchema = {
  summary: 'Save the tenant configuration',
  description:
    'Validates the form values against the connector configuration form, checks the credentials at the PSP, stores the merged configuration (secrets encrypted) and announces payment methods. Errors: 400 with code 443 (whole form) or 444 (field messages as a JSON string).',
  tags: ['configuration'],
  security: [{ bearer: [] }],
  headers: tenantHeaders,
  body: {
    type: 'object',
    required: ['data'],
    properties: {
      data: {
        type: 'object',
        required: ['attributes'],
        properties: {
          type: { type: 'string', enum: ['configuration'] },
          attributes: {
            type: 'object',
            required: ['configuration'],
            properties: { configuration: { type: ['string', 'object'], description: 'The form values: a JSON object, usually sent as a string of JSON' } },
          },
        },
      },
    },
  },
  response: {
    200: {
      type: 'object',
      properties: {
        tenantIdentifier: { type: 'string' },
        configuration: { type: 'object', additionalProperties: true, description: 'Stored configuration, secrets masked as ********' },
      },
    },
    400: errorBodySchema,
  },
} as const;

const disconnectSchema = {
  summary: 'Disconnect the tenant',
  description: 'Deactivates the tenant and withdraws its payment methods. 409 asks for confirmation (X-Confirmation-Status: true[,true]).',
  tags: ['configuration'],
  security: [{ bearer: [] }],
  headers: {
    ...tenantHeaders,
    properties: { ...tenantHeaders.properties, 'x-confirmation-status': { type: 'string', description: 'Comma list of answers to the confirmations, in check order' } },
  },
  response: {
    204: { type: 'null', description: 'Disconnected (or nothing to disconnect)' },
    400: errorBodySchema,
    409: errorBodySchema,
  },
} as const;

/** The schemas document the endpoints (OpenAPI); the handlers do their own checks to answer the contract's codes. */
const noValidation = (): ((data: unknown) => boolean) => () => true;

function headerValue(req: FastifyRequest, name: string): string | undefined {
  const raw = req.headers[name];
  return Array.isArray(raw) ? raw.join(',') : raw;
}

export async function configureRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(['application/json', 'application/vnd.api+json'], { parseAs: 'buffer' }, (req, body, done) => {
      (req as { rawBody?: Buffer }).rawBody = body as Buffer;
      const text = (body as Buffer).toString('utf8');
      if (text.trim() === '') return done(null, undefined);
      try {
        done(null, JSON.parse(text));
      } catch (err) {
        // configure answers 443 like any malformed body, naming where parsing stopped (never quoting the body)
        const msg = String((err as Error).message);
        const position = /position (\d+)/.exec(msg)?.[1];
        done(null, new UnparseableBody(position !== undefined ? Number(position) : /end of JSON input/.test(msg) ? text.length : undefined));
      }
    });

    const configure = async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
      const result = await configureTenant(deps, {
        tenantIdentifier: tenantFromHeaders(req),
        body: req.body,
        locale: resolveLocale(req.headers['accept-language']),
        requestId: req.id,
      });
      return reply.code(200).type('application/json; charset=utf-8').send(result);
    };
    for (const url of ['/private/configure', '/configure']) {
      scope.post(url, { schema: configureSchema, validatorCompiler: noValidation }, configure);
    }
  });

  await app.register(async (scope) => {
    // Any body is ignored (Spryker clients send an empty one).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, _body, done) => done(null, undefined));

    const disconnect = async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
      await disconnectTenant(deps, {
        tenantIdentifier: tenantFromHeaders(req),
        confirmation: headerValue(req, 'x-confirmation-status'),
        locale: resolveLocale(req.headers['accept-language']),
        requestId: req.id,
      });
      return reply.code(204).send();
    };
    for (const url of ['/private/disconnect', '/disconnect']) {
      scope.post(url, { schema: disconnectSchema, validatorCompiler: noValidation, config: { allowForm: true } }, disconnect);
    }
  });
}
