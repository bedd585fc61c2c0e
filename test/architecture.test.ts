/**
 * Architecture rules that keep a new PSP "one folder plus one line" (connectors/README.md): no use case, route, store,
 * domain or messaging file names a connector, imports a connector's folder, or reads a connector's own config; and all
 * SQL lives in src/store/ (issue 11): no other layer runs a query or holds an SQL statement.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONNECTOR_MODULES } from '../src/connectors/modules.js';

const root = join(import.meta.dirname, '..');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Source without comments (a comment may say "e.g. Stripe's source_transaction"; code may not). */
function code(path: string): string {
  return stripComments(readFileSync(path, 'utf8'));
}

function stripComments(src: string): string {
  return src
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

/** What in `src` (comments stripped) names one of the connector ids. */
function offencesIn(src: string, ids: readonly string[]): string[] {
  const found: string[] = [];
  for (const id of ids) {
    const patterns = [
      new RegExp(`(['"\`])${id}\\1`, 'i'), // a string literal that is the id
      new RegExp(`connectors/${id}/`), // an import of the connector's folder
      new RegExp(`config\\.${id}[A-Z]\\w*`), // the connector's own config (config.stripeApiBase…)
      new RegExp(`['"\`/]${id}[/'"\`]`, 'i'), // a path of the connector's (e.g. '/sandbox/...')
    ];
    for (const re of patterns) {
      const m = re.exec(src);
      if (m) found.push(m[0]);
    }
  }
  return [...new Set(found)];
}

const GENERIC_LAYERS = ['src/domain', 'src/app', 'src/http', 'src/store', 'src/messaging'];

/**
 * Layers that must not hold SQL (ALL SQL lives in src/store/). Extend this list when a layer's SQL has moved.
 * Not listed: src/store (the repositories) and src/sandbox/ (the sandbox PSP double: a stand-in for an external PSP
 * with its own tables in migrations/sandbox/, not part of the app's layers). A connector's own migrations (SQL files
 * in a `migrations/` folder) are exempt too.
 */
const SQL_FREE_LAYERS = ['src/domain', 'src/app', 'src/http', 'src/connectors', 'src/messaging'];

const QUERY_CALL = /\.query\s*(<[^>]*>)?\s*\(/;
const SQL_STATEMENT = /\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b/;
const STRING_LITERAL = /'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`/g;

/** The `.query(` calls and SQL-holding string literals in `src` (comments stripped). */
function sqlOffencesIn(src: string): string[] {
  const found: string[] = [];
  const call = QUERY_CALL.exec(src);
  if (call) found.push(call[0]);
  for (const m of src.matchAll(STRING_LITERAL)) {
    if (SQL_STATEMENT.test(m[0])) found.push(m[0].length > 60 ? `${m[0].slice(0, 57)}...` : m[0]);
  }
  return found;
}

const isConnectorMigration = (rel: string): boolean => /^src\/connectors\/[^/]+\/(.*\/)?migrations\//.test(rel);

describe('architecture', () => {
  const ids = CONNECTOR_MODULES.map((m) => m.id);

  it('knows at least the sandbox connector (the rule below is not vacuous)', () => {
    expect(ids).toContain('sandbox');
  });

  it('no generic layer names a connector, imports its folder or reads its config', () => {
    const offences: string[] = [];
    for (const layer of GENERIC_LAYERS) {
      for (const f of files(join(root, layer))) {
        for (const o of offencesIn(code(f), ids)) offences.push(`${relative(root, f)}: ${o}`);
      }
    }
    expect(offences).toEqual([]);
  });

  it('no layer outside src/store holds SQL: no .query( call, no SQL statement in a string', () => {
    const offences: string[] = [];
    let scanned = 0;
    for (const layer of SQL_FREE_LAYERS) {
      for (const f of files(join(root, layer))) {
        const rel = relative(root, f).split('\\').join('/');
        if (isConnectorMigration(rel)) continue;
        scanned++;
        for (const o of sqlOffencesIn(code(f))) offences.push(`${rel}: ${o}`);
      }
    }
    expect(scanned).toBeGreaterThan(20);
    expect(offences).toEqual([]);
  });

  it('the SQL rule catches a query and a statement string, and ignores comments and prose (guards the guard)', () => {
    expect(sqlOffencesIn("await tx.query('SELECT 1');")).toEqual(['.query(', "'SELECT 1'"]);
    expect(sqlOffencesIn('const r = await q.query<{ id: string }>(sql, []);')).toEqual(['.query<{ id: string }>(']);
    expect(sqlOffencesIn('const s = `UPDATE webhook_inbox SET state = $2 WHERE id = $1`;')).toEqual(['`UPDATE webhook_inbox SET state = $2 WHERE id = $1`']);
    expect(sqlOffencesIn('const s = "DELETE FROM outbox WHERE id = $1";')).toHaveLength(1);
    expect(sqlOffencesIn("const s = 'INSERT INTO tenants (tenant_identifier) VALUES ($1)';")).toHaveLength(1);
    expect(sqlOffencesIn(stripComments("const a = 1; // SELECT * FROM payments\n/* tx.query('DELETE FROM x') */"))).toEqual([]);
    expect(sqlOffencesIn("const label = 'Select a payment method'; const e = req.query.endpoint;")).toEqual([]);
    expect(isConnectorMigration('src/connectors/acme/migrations/001_acme.ts')).toBe(true);
    expect(isConnectorMigration('src/connectors/acme/client.ts')).toBe(false);
  });

  it('the rule catches an offence, and ignores comments (guards the guard)', () => {
    expect(offencesIn("const a = deps.connectors.get('sandbox');", ['sandbox'])).toEqual(["'sandbox'"]);
    expect(offencesIn("import { x } from '../connectors/stripe/index.js';", ['stripe'])).toContain('connectors/stripe/');
    expect(offencesIn("app.get('/sandbox/pay', h);", ['sandbox'])).toEqual(['/sandbox/']);
    expect(offencesIn('const u = config.stripeApiBase;', ['stripe'])).toEqual(['config.stripeApiBase']);
    expect(offencesIn(stripComments("const a = 1; // e.g. 'stripe' /stripe/\n/* 'sandbox' */"), ['stripe', 'sandbox'])).toEqual([]);
  });
});
