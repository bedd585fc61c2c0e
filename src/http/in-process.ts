/**
 * This server's own routes called in memory (Fastify's `inject`): what a connector whose PSP is mounted in this
 * process (the sandbox at `/sandbox`) uses instead of a loopback HTTP request. The same routes, hooks, validation and
 * error mapping run; only the socket and the HTTP parsing are skipped.
 */
import type { FastifyInstance } from 'fastify';
import type { InProcessHttp } from '../connectors/types.js';

export function inProcessHttp(app: FastifyInstance): InProcessHttp {
  return async ({ method, path, headers, body }) => {
    const r = await app.inject({ method, url: path, headers, ...(body !== undefined ? { payload: body } : {}) });
    return { status: r.statusCode, text: r.payload };
  };
}
