/**
 * Validates a Compose file against the Compose Specification's JSON schema (vendored from
 * github.com/compose-spec/compose-spec `schema/compose-spec.json`, Apache-2.0) with Ajv. CI cannot reach an image
 * registry, so this checks what it can: the file's structure, keys and value types.
 *
 *   node dist/scripts/validate-compose.js compose.yaml
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { projectRoot } from '../src/paths.js';

export const COMPOSE_SCHEMA = join(projectRoot, 'scripts', 'schemas', 'compose-spec.json');

/** Problems of the Compose file text (empty when valid), each as "<path>: <message>". */
export function composeProblems(text: string): string[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    return [`YAML: ${(err as Error).message.split('\n')[0]}`];
  }
  const ajv = new Ajv({ strict: false, allErrors: true });
  // The schema names its draft as https://json-schema.org/draft-07/schema; Ajv's default class *is* draft-07 (its meta
  // schema id uses http://), so the $schema line is dropped rather than fetched.
  const { $schema: _draft, ...schema } = JSON.parse(readFileSync(COMPOSE_SCHEMA, 'utf8')) as Record<string, unknown>;
  const validate = ajv.compile(schema);
  if (validate(doc)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message ?? 'invalid'}${e.params && 'additionalProperty' in e.params ? ` ("${String(e.params.additionalProperty)}")` : ''}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const file = process.argv[2] ?? 'compose.yaml';
  const problems = composeProblems(readFileSync(file, 'utf8'));
  if (problems.length > 0) {
    process.stderr.write(`${file} does not match the Compose Specification schema:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
    process.exit(1);
  }
  process.stdout.write(`${file}: valid against the Compose Specification schema\n`);
}
