/**
 * docs/ ships with the code: the reference files are generated (scripts/docs.ts) from src/config.ts, /openapi.json
 * and /asyncapi.json, and the committed ones must equal what the generator produces. Guides link only to files
 * that exist, and the README keeps its two commands first and links the docs.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configurationMarkdown, DOCS_DIR, generateDocs, staleDocs } from '../scripts/docs.js';
import { VARIABLES } from '../src/config.js';
import { projectRoot } from '../src/paths.js';

describe('generated reference docs', () => {
  it('docs/configuration.md, docs/http-api.md and docs/messages.md equal what `npm run docs` produces', async () => {
    const generated = await generateDocs();
    expect(Object.keys(generated).sort()).toEqual(['configuration.md', 'http-api.md', 'messages.md']);
    // on failure: run `npm run docs` and commit the result
    expect(staleDocs(generated), 'run `npm run docs` and commit the result').toEqual([]);
    expect(generated['http-api.md']).toContain('### POST /private/configure');
    expect(generated['http-api.md']).toContain('### POST /private/initialize-payment');
    expect(generated['messages.md']).toContain('### PaymentUpdated');
    expect(generated['messages.md']).toContain('### RefundPayment');
  }, 60_000);

  it('the configuration reference lists every variable of the table with its default, format and example', () => {
    const md = configurationMarkdown();
    for (const v of VARIABLES) {
      const row = md.split('\n').find((l) => l.startsWith(`| \`${v.name}\` |`));
      expect(row, v.name).toBeDefined();
      expect(row).toContain(`\`${v.name}=${v.example}\``);
    }
  });

  it('a changed source makes the check fail (the check can fail)', () => {
    expect(staleDocs({ 'configuration.md': `${configurationMarkdown()}\nchanged\n` })).toEqual(['configuration.md']);
  });
});

describe('guides', () => {
  const guides = readdirSync(DOCS_DIR).filter((f) => f.endsWith('.md'));

  it('the guides exist', () => {
    for (const g of ['connect-a-shop.md', 'production.md', 'operate.md']) expect(guides, g).toContain(g);
  });

  /** GitHub's anchors of a Markdown file's headings. */
  const anchors = (file: string): Set<string> =>
    new Set(
      [...readFileSync(file, 'utf8').replace(/^```[\s\S]*?^```$/gm, '').matchAll(/^#+ (.+)$/gm)].map((m) =>
        m[1]!.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-'),
      ),
    );

  it('every relative link in docs/ and README.md points to a file (and heading) that exists', () => {
    const files = [...guides.map((g) => join(DOCS_DIR, g)), join(projectRoot, 'README.md')];
    const broken: string[] = [];
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/\]\(([^)#\s]*)(?:#([^)\s]*))?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        const base = f.endsWith('README.md') ? projectRoot : DOCS_DIR;
        const path = target === '' ? f : join(base, target);
        if (!existsSync(path)) broken.push(`${f}: ${target}`);
        else if (m[2] && path.endsWith('.md') && !anchors(path).has(m[2])) broken.push(`${f}: ${target}#${m[2]}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('no guide sends the reader to the contract documents outside the repository', () => {
    for (const g of ['configuration.md', 'http-api.md', 'messages.md', 'connect-a-shop.md', 'production.md', 'operate.md']) {
      expect(readFileSync(join(DOCS_DIR, g), 'utf8'), g).not.toContain('shared/spec');
    }
  });
});

describe('README', () => {
  const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!.trim());

  it('keeps its two commands as the first two sh blocks', () => {
    expect(blocks[0]).toBe('npm install && npm start');
    expect(blocks[1]).toBe('npm install && npm test');
  });

  it('links the docs', () => {
    for (const f of ['docs/connect-a-shop.md', 'docs/production.md', 'docs/operate.md', 'docs/configuration.md', 'docs/http-api.md', 'docs/messages.md']) expect(readme).toContain(`(${f})`);
  });
});
