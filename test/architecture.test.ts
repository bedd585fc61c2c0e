/**
 * Architecture rules that keep a new PSP "one folder plus one line" (connectors/README.md): no use case, route, store,
 * domain or messaging file names a connector, imports a connector's folder, or reads a connector's own config; SQL
 * statements live in src/store/ only where they already do (the console issue moves the rest).
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

  it('the rule catches an offence, and ignores comments (guards the guard)', () => {
    expect(offencesIn("const a = deps.connectors.get('sandbox');", ['sandbox'])).toEqual(["'sandbox'"]);
    expect(offencesIn("import { x } from '../connectors/stripe/index.js';", ['stripe'])).toContain('connectors/stripe/');
    expect(offencesIn("app.get('/sandbox/pay', h);", ['sandbox'])).toEqual(['/sandbox/']);
    expect(offencesIn('const u = config.stripeApiBase;', ['stripe'])).toEqual(['config.stripeApiBase']);
    expect(offencesIn(stripComments("const a = 1; // e.g. 'stripe' /stripe/\n/* 'sandbox' */"), ['stripe', 'sandbox'])).toEqual([]);
  });
});
