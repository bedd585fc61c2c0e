/**
 * Catalog artifacts over HTTP (catalog.md 1): manifests per locale, the configuration form, translations,
 * api.json and assets. No authentication, same content for every tenant, ETag (SHA-256 of the body) with
 * 304 on If-None-Match, `Cache-Control: public, max-age=300`, `Access-Control-Allow-Origin: *`.
 * The artifacts are loaded and validated when the routes are built: an invalid artifact stops start-up.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ASSET_TYPES, getCatalog, LOCALE_PATTERN, replacePlaceholders } from '../app/catalog.js';
import type { AppDeps } from '../app/context.js';
import { AppError } from '../domain/errors.js';

const JSON_TYPE = 'application/json; charset=utf-8';

export function etagOf(body: Buffer | string): string {
  return `"${createHash('sha256').update(body).digest('hex')}"`;
}

/** True when `If-None-Match` lists `etag` (or `*`); weak validators compare equal. */
export function matchesIfNoneMatch(header: string | string[] | undefined, etag: string): boolean {
  const raw = Array.isArray(header) ? header.join(',') : header;
  if (!raw) return false;
  return raw.split(',').some((v) => {
    const tag = v.trim().replace(/^W\//, '');
    return tag === '*' || tag === etag;
  });
}

function sendCached(req: FastifyRequest, reply: FastifyReply, body: Buffer | string, contentType: string): FastifyReply {
  const etag = etagOf(body);
  reply.header('ETag', etag).header('Cache-Control', 'public, max-age=300').header('Access-Control-Allow-Origin', '*');
  if (matchesIfNoneMatch(req.headers['if-none-match'], etag)) return reply.code(304).send();
  return reply.code(200).type(contentType).send(body);
}

const artifactResponse = { 200: { description: 'The artifact (JSON)', type: 'object', additionalProperties: true }, 304: { description: 'Not modified', type: 'null' } } as const;

export async function catalogRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { config } = deps;
  const connector = deps.connectors.default; // the deployment's connector: one deployment is one ACP app
  // Throws a one-line CatalogError (file + rule) for invalid artifacts: stops start-up.
  const catalog = getCatalog(connector.id, connector.configurationKeys);

  // Bodies depend on APP_BASE_URL (which a test server learns after listen): rendered lazily, cached per URL.
  const rendered = new Map<string, string>();
  const render = (key: string, value: unknown): string => {
    const cacheKey = `${config.appBaseUrl}\u0000${key}`;
    let body = rendered.get(cacheKey);
    if (body === undefined) {
      body = JSON.stringify(replacePlaceholders(value, config.appBaseUrl));
      rendered.set(cacheKey, body);
    }
    return body;
  };
  const assetBodies = new Map<string, Buffer>();
  for (const [name, path] of catalog.assets) assetBodies.set(name, readFileSync(path));

  const common = { tags: ['catalog'] };

  app.get('/app/manifest', { schema: { ...common, summary: 'Locales with a manifest', response: artifactResponse } }, async (req, reply) =>
    sendCached(req, reply, JSON.stringify({ locales: catalog.locales }), JSON_TYPE),
  );

  app.get<{ Params: { locale: string } }>(
    '/app/manifest/:locale',
    {
      schema: {
        ...common,
        summary: 'The manifest of one locale',
        params: { type: 'object', properties: { locale: { type: 'string', description: 'e.g. en_US, de_DE' } } },
        response: artifactResponse,
      },
    },
    async (req, reply) => {
      const locale = req.params.locale;
      const manifest = LOCALE_PATTERN.test(locale) ? catalog.manifests[locale] : undefined;
      if (!manifest) throw new AppError('NOT_FOUND', `No manifest for locale "${locale}".`);
      return sendCached(req, reply, render(`manifest/${locale}`, manifest), JSON_TYPE);
    },
  );

  app.get('/app/configuration', { schema: { ...common, summary: "The active connector's configuration form", response: artifactResponse } }, async (req, reply) =>
    sendCached(req, reply, render('configuration', catalog.configuration), JSON_TYPE),
  );

  app.get('/app/translation', { schema: { ...common, summary: 'Translations of the form (app-wide and connector keys)', response: artifactResponse } }, async (req, reply) =>
    sendCached(req, reply, render('translation', catalog.translation), JSON_TYPE),
  );

  app.get('/app/api', { schema: { ...common, summary: 'Configure and disconnect paths (api.json)', response: artifactResponse } }, async (req, reply) =>
    sendCached(req, reply, render('api', catalog.api), JSON_TYPE),
  );

  app.get<{ Params: { file: string } }>(
    '/app/assets/:file',
    {
      schema: {
        ...common,
        summary: 'An asset referenced by the manifests',
        params: { type: 'object', properties: { file: { type: 'string' } } },
        response: { 200: { description: 'The file (image/svg+xml, image/png or image/jpeg)' }, 304: { description: 'Not modified', type: 'null' } },
      },
    },
    async (req, reply) => {
      const file = req.params.file;
      const body = /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(file) ? assetBodies.get(file) : undefined;
      if (!body) throw new AppError('NOT_FOUND', `No asset "${file}".`);
      const ext = file.slice(file.lastIndexOf('.')).toLowerCase();
      return sendCached(req, reply, body, ASSET_TYPES[ext] ?? 'application/octet-stream');
    },
  );
}
