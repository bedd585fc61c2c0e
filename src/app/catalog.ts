/**
 * The catalog artifacts of config/app/ (catalog.md): loading, the consistency rules of catalog.md 7,
 * and the configuration-form model that configure validates against (catalog.md 4.2).
 *
 * `loadCatalog` throws a CatalogError whose message is one line naming the file and the rule; the HTTP
 * layer calls it while building routes, so an invalid artifact stops start-up.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { LOCALES } from '../i18n/messages.js';
import { appConfigDir, projectRoot } from '../paths.js';

export class CatalogError extends Error {
  constructor(file: string, rule: string) {
    super(`Invalid catalog artifact ${file}: ${rule}`);
    this.name = 'CatalogError';
  }
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Configuration form model (catalog.md 4.1 / 4.2)
// ---------------------------------------------------------------------------------------------

export const WIDGETS = [
  'string',
  'textline',
  'number',
  'date',
  'time',
  'password',
  'textarea',
  'file',
  'link',
  'notification',
  'checkbox',
  'boolean',
  'radio',
  'select',
  'app-status',
  'array',
] as const;
export const DISPLAY_ONLY_WIDGETS: ReadonlySet<string> = new Set(['notification', 'link']);

export interface FormField {
  id: string;
  type: string | undefined;
  widget: string | undefined;
  required: boolean;
  /** Password widget (secret at rest, masked). The connector's extra secret fields are added by configure. */
  password: boolean;
  /** `select` with `multiple: true`. */
  multiple: boolean;
  /** Allowed values from `oneOf[].enum` and `multipleOptions`; undefined when the field has no such list. */
  allowed: unknown[] | undefined;
  default: unknown;
  /** For `type: "array"`: the item object's fields. */
  items: FormField[] | undefined;
  displayOnly: boolean;
}

export interface ConfigurationForm {
  /** Value fields in property order (display-only widgets excluded). */
  fields: FormField[];
  /** Every property id, display-only included. */
  propertyIds: string[];
}

export const widgetIdOf = (def: Obj): string | undefined => {
  const w = def.widget;
  if (typeof w === 'string') return w;
  if (w && typeof w === 'object' && typeof (w as Obj).id === 'string') return (w as Obj).id as string;
  return undefined;
};

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function fieldsOf(properties: Obj, required: unknown): FormField[] {
  const req = new Set(Array.isArray(required) ? required.filter((x): x is string => typeof x === 'string') : []);
  const out: FormField[] = [];
  for (const [id, raw] of Object.entries(properties)) {
    const def = isObj(raw) ? raw : {};
    const widget = widgetIdOf(def);
    let allowed: unknown[] | undefined;
    if (Array.isArray(def.oneOf)) {
      allowed = [];
      for (const o of def.oneOf) if (isObj(o) && Array.isArray(o.enum)) allowed.push(...o.enum);
    }
    if (Array.isArray(def.multipleOptions)) allowed = [...(allowed ?? []), ...def.multipleOptions];
    const items = def.type === 'array' && isObj(def.items) && isObj(def.items.properties) ? fieldsOf(def.items.properties, def.items.required) : undefined;
    out.push({
      id,
      type: typeof def.type === 'string' ? def.type : undefined,
      widget,
      required: req.has(id) || def.isRequired === true,
      password: widget === 'password',
      multiple: def.multiple === true,
      allowed,
      default: def.default,
      items,
      displayOnly: widget !== undefined && DISPLAY_ONLY_WIDGETS.has(widget),
    });
  }
  return out;
}

export function formModel(configuration: Obj): ConfigurationForm {
  const properties = isObj(configuration.properties) ? configuration.properties : {};
  const all = fieldsOf(properties, configuration.required);
  return { fields: all.filter((f) => !f.displayOnly), propertyIds: all.map((f) => f.id) };
}

// ---------------------------------------------------------------------------------------------
// Loading and consistency rules (catalog.md 7)
// ---------------------------------------------------------------------------------------------

export interface Catalog {
  dir: string;
  connector: string;
  /** locale → manifest (with `{{APP_BASE_URL}}` placeholders). */
  manifests: Record<string, Obj>;
  locales: string[];
  configuration: Obj;
  /** App-wide translations merged with the connector's. */
  translation: Obj;
  api: Obj;
  /** file name → absolute path. */
  assets: Map<string, string>;
  form: ConfigurationForm;
}

export const ASSET_TYPES: Record<string, string> = { '.svg': 'image/svg+xml', '.png': 'image/png', '.jpeg': 'image/jpeg', '.jpg': 'image/jpeg' };
export const LOCALE_PATTERN = /^[a-z]{2}_[A-Z]{2}$/;

const BUSINESS_MODELS = ['B2C', 'B2B', 'B2C_MARKETPLACE', 'B2B_MARKETPLACE'];
const CATEGORIES = ['BUSINESS_INTELLIGENCE', 'CONSENT_MANAGEMENT', 'LOYALTY_MANAGEMENT', 'PAYMENT', 'PRODUCT_INFORMATION_MANAGEMENT', 'SEARCH', 'TAX', 'USER_GENERATED_CONTENT'];
const LABELS = ['Silver Partner', 'Gold Partner', 'New', 'Popular', 'Free Trial'];
const ASSET_KINDS = ['icon', 'image', 'video', 'internal-asset'];
const RESOURCE_TYPES = ['internal-documentation', 'homepage', 'user-documentation', 'developer-documentation', 'release-notes'];
const FILE_TYPES = ['pdf', 'markdown', 'spryker-docs'];

function readJson(dir: string, rel: string): Obj {
  const file = join(dir, rel);
  const shown = displayPath(file);
  if (!existsSync(file)) throw new CatalogError(shown, 'file is missing');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CatalogError(shown, `not valid JSON (${(err as Error).message.split('\n')[0]})`);
  }
  if (!isObj(parsed)) throw new CatalogError(shown, 'must be a JSON object');
  return parsed;
}

function displayPath(file: string): string {
  const rel = relative(projectRoot, file);
  return rel.startsWith('..') ? file : rel;
}

/** Manifest paths whose values are texts (may differ between locales). `*` matches any key or index. */
const TEXT_PATHS = [
  'name',
  'provider',
  'descriptionShort',
  'description',
  'developedBy',
  'pages.*.*.title',
  'pages.*.*.data',
  'pages.*.*.data.*',
  'resources.*.title',
  'dialogs.*.title',
  'dialogs.*.content',
  'dialogs.*.buttons.*',
];

function isTextPath(path: string[]): boolean {
  return TEXT_PATHS.some((p) => {
    const parts = p.split('.');
    return parts.length === path.length && parts.every((x, i) => x === '*' || x === path[i]);
  });
}

/** Rule 1: same keys, same non-text values. Returns a description of the first difference or null. */
function compareManifests(a: unknown, b: unknown, path: string[] = []): string | null {
  if (isTextPath(path)) {
    const textual = (v: unknown): boolean => typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
    if (!textual(a) || !textual(b)) return `"${path.join('.')}" must be a text in every locale`;
    if (Array.isArray(a) !== Array.isArray(b) || (Array.isArray(a) && Array.isArray(b) && a.length !== b.length)) return `"${path.join('.')}" differs in shape`;
    return null;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return `"${path.join('.') || '(root)'}" differs in length or type`;
    for (let i = 0; i < a.length; i++) {
      const d = compareManifests(a[i], b[i], [...path, String(i)]);
      if (d) return d;
    }
    return null;
  }
  if (isObj(a) || isObj(b)) {
    if (!isObj(a) || !isObj(b)) return `"${path.join('.') || '(root)'}" differs in type`;
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    const missing = ka.find((k) => !kb.includes(k)) ?? kb.find((k) => !ka.includes(k));
    if (missing !== undefined) return `key "${[...path, missing].join('.')}" is not present in every locale`;
    for (const k of ka) {
      const d = compareManifests(a[k], b[k], [...path, k]);
      if (d) return d;
    }
    return null;
  }
  if (a !== b) return `non-text value "${path.join('.')}" differs between locales`;
  return null;
}

function checkManifest(file: string, m: Obj, assets: Map<string, string>): void {
  const fail = (msg: string): never => {
    throw new CatalogError(file, `rule 7.2 (manifest values): ${msg}`);
  };
  for (const k of ['name', 'provider', 'descriptionShort', 'description', 'url']) {
    if (typeof m[k] !== 'string' || (m[k] as string).trim() === '') fail(`"${k}" must be a non-empty string`);
  }
  if (m.developedBy !== undefined && typeof m.developedBy !== 'string') fail('"developedBy" must be a string');
  if (/[\r\n]/.test(m.description as string) || /<\/?[A-Za-z!][^>]*>/.test(m.description as string)) fail('"description" must not contain line breaks or HTML');
  if (typeof m.isAvailable !== 'boolean') fail('"isAvailable" must be a boolean');
  const inSet = (key: string, allowed: string[], required: boolean): void => {
    const v = m[key];
    if (v === undefined && !required) return;
    if (!Array.isArray(v) || (required && v.length === 0)) return fail(`"${key}" must be a non-empty array`);
    for (const x of v) if (typeof x !== 'string' || !allowed.includes(x)) fail(`"${key}" value ${JSON.stringify(x)} is not one of ${allowed.join(', ')}`);
  };
  inSet('businessModels', BUSINESS_MODELS, true);
  inSet('categories', CATEGORIES, true);
  inSet('labels', LABELS, false);
  if (m.pages !== undefined) {
    if (!isObj(m.pages)) fail('"pages" must be an object');
    for (const [page, blocks] of Object.entries(m.pages as Obj)) {
      if (page !== 'Overview' && page !== 'Legal') fail(`page "${page}" is not Overview or Legal`);
      if (!Array.isArray(blocks)) fail(`page "${page}" must be an array of blocks`);
      for (const b of blocks as unknown[]) {
        if (!isObj(b) || typeof b.title !== 'string') fail(`a block of page "${page}" has no title`);
        const blk = b as Obj;
        if (blk.type === 'list') {
          if (!Array.isArray(blk.data) || !blk.data.every((x) => typeof x === 'string')) fail(`list block "${String(blk.title)}" needs data: string[]`);
        } else if (blk.type === 'text') {
          if (typeof blk.data !== 'string') fail(`text block "${String(blk.title)}" needs data: string`);
        } else fail(`block "${String(blk.title)}" has type ${JSON.stringify(blk.type)}, expected list or text`);
      }
    }
  }
  if (m.assets !== undefined) {
    if (!Array.isArray(m.assets)) fail('"assets" must be an array');
    for (const a of m.assets as unknown[]) {
      if (!isObj(a) || typeof a.url !== 'string') return fail('every asset needs a url');
      const asset = a as Obj;
      if (!ASSET_KINDS.includes(asset.type as string)) fail(`asset type ${JSON.stringify(asset.type)} is not one of ${ASSET_KINDS.join(', ')}`);
      const url = asset.url as string;
      if (asset.type === 'video') {
        if (!/^https:\/\/([a-z0-9-]+\.)*(wistia\.com|wistia\.net|wi\.st)\//i.test(url)) fail(`video asset "${url}" must be a Wistia URL`);
        continue;
      }
      if (!/\.(jpeg|png|svg)$/.test(url)) fail(`asset "${url}" must end in .jpeg, .png or .svg`);
      if (/^[a-z]+:/i.test(url)) fail(`asset "${url}" must be a relative path`);
      const name = url.replace(/^\/?app\/assets\//, '').replace(/^\/?assets\//, '');
      if (!assets.has(name)) fail(`asset "${url}" does not resolve to a file in config/app/assets/`);
    }
  }
  if (m.resources !== undefined) {
    if (!Array.isArray(m.resources)) fail('"resources" must be an array');
    for (const r of m.resources as unknown[]) {
      if (!isObj(r) || typeof r.title !== 'string' || typeof r.url !== 'string') return fail('every resource needs title and url');
      const res = r as Obj;
      if (!/^(https?:\/\/|\{\{APP_BASE_URL\}\})/.test(res.url as string)) fail(`resource url "${String(res.url)}" must be absolute`);
      if (res.type !== undefined && !RESOURCE_TYPES.includes(res.type as string)) fail(`resource type ${JSON.stringify(res.type)} is not allowed`);
      if (res.fileType !== undefined && (res.type !== 'internal-documentation' || !FILE_TYPES.includes(res.fileType as string))) {
        fail(`resource fileType ${JSON.stringify(res.fileType)} is not allowed`);
      }
    }
  }
  if (m.dialogs !== undefined) {
    if (!isObj(m.dialogs)) fail('"dialogs" must be an object');
    for (const [k, d] of Object.entries(m.dialogs as Obj)) {
      if (k !== 'onSave' && k !== 'onDisconnect') fail(`dialog "${k}" is not onSave or onDisconnect`);
      if (!isObj(d) || d.type !== 'confirmation') fail(`dialog "${k}" must have type "confirmation"`);
      const dlg = d as Obj;
      if (typeof dlg.title !== 'string' || typeof dlg.content !== 'string') fail(`dialog "${k}" needs title and content`);
      const b = dlg.buttons;
      if (!isObj(b) || typeof b.ok !== 'string' || typeof b.cancel !== 'string' || !Object.values(b).every((x) => typeof x === 'string')) {
        fail(`dialog "${k}" buttons must be strings including "ok" and "cancel"`);
      }
    }
  }
  if (m.dependencies !== undefined) {
    if (!Array.isArray(m.dependencies)) fail('"dependencies" must be an array');
    for (const d of m.dependencies as unknown[]) {
      if (!isObj(d) || typeof d.name !== 'string' || typeof d.version !== 'string') return fail('every dependency needs name and version');
      const c = (d as Obj).compatibleBusinessModels;
      if (c !== undefined && (!Array.isArray(c) || !c.every((x) => BUSINESS_MODELS.includes(x as string)))) fail(`dependency "${String(d.name)}" has unknown compatibleBusinessModels`);
    }
  }
}

function checkConfiguration(file: string, cfg: Obj, configurationKeys: readonly string[] | undefined): void {
  const fail = (msg: string): never => {
    throw new CatalogError(file, `rule 7.3 (configuration form): ${msg}`);
  };
  if (!isObj(cfg.properties)) fail('"properties" must be an object');
  const props = cfg.properties as Obj;
  const ids = Object.keys(props);
  const checkIds = (list: unknown, what: string): void => {
    if (list === undefined) return;
    if (!Array.isArray(list)) return fail(`"${what}" must be an array`);
    for (const id of list) if (typeof id !== 'string' || !ids.includes(id)) fail(`${what} names "${String(id)}", which is not in properties`);
  };
  checkIds(cfg.required, 'required');
  checkIds(cfg.order, 'order');
  if (cfg.fieldsets !== undefined) {
    if (!Array.isArray(cfg.fieldsets)) fail('"fieldsets" must be an array');
    for (const fs of cfg.fieldsets as unknown[]) {
      if (!isObj(fs) || typeof fs.id !== 'string') return fail('every fieldset needs an id');
      checkIds((fs as Obj).fields, `fieldset "${String(fs.id)}" fields`);
    }
  }
  const checkProps = (p: Obj, prefix: string): void => {
    for (const [id, raw] of Object.entries(p)) {
      if (!isObj(raw)) fail(`property "${prefix}${id}" must be an object`);
      const def = raw as Obj;
      const w = widgetIdOf(def);
      if (def.widget !== undefined && (w === undefined || !(WIDGETS as readonly string[]).includes(w))) fail(`property "${prefix}${id}" has unknown widget ${JSON.stringify(def.widget)}`);
      if (def.type !== undefined && !['string', 'number', 'boolean', 'array', 'object'].includes(def.type as string)) fail(`property "${prefix}${id}" has unknown type ${JSON.stringify(def.type)}`);
      if ((w === 'radio' || w === 'select') && !Array.isArray(def.oneOf) && !Array.isArray(def.multipleOptions)) fail(`${w} "${prefix}${id}" needs oneOf or multipleOptions`);
      if (def.type === 'array' && isObj(def.items) && isObj(def.items.properties)) checkProps(def.items.properties, `${prefix}${id}.`);
    }
  };
  checkProps(props, '');
  if (configurationKeys) {
    const valueIds = formModel(cfg).fields.map((f) => f.id).sort();
    const keys = [...configurationKeys].sort();
    const extra = valueIds.find((k) => !keys.includes(k));
    const missing = keys.find((k) => !valueIds.includes(k));
    if (extra !== undefined) fail(`field "${extra}" is not a configuration key of the connector`);
    if (missing !== undefined) fail(`connector configuration key "${missing}" has no field`);
  }
}

/** Translation keys the form uses (catalog.md 5). */
export function formTranslationKeys(cfg: Obj): string[] {
  const keys = new Set<string>();
  const add = (v: unknown): void => {
    if (typeof v === 'string' && v !== '') keys.add(v);
  };
  const walk = (props: Obj): void => {
    for (const raw of Object.values(props)) {
      if (!isObj(raw)) continue;
      for (const k of ['title', 'description', 'placeholder', 'hint']) add(raw[k]);
      if (widgetIdOf(raw) === 'notification') add(raw.content);
      if (Array.isArray(raw.oneOf)) for (const o of raw.oneOf) if (isObj(o)) add(o.description);
      if (isObj(raw.items)) {
        if (isObj(raw.items.properties)) walk(raw.items.properties);
        if (Array.isArray(raw.items.fieldsets)) for (const fs of raw.items.fieldsets) if (isObj(fs)) (add(fs.title), add(fs.hint));
      }
    }
  };
  if (isObj(cfg.properties)) walk(cfg.properties);
  if (Array.isArray(cfg.fieldsets)) for (const fs of cfg.fieldsets) if (isObj(fs)) (add(fs.title), add(fs.hint));
  return [...keys];
}

function checkTranslations(file: string, tr: Obj): void {
  for (const [key, v] of Object.entries(tr)) {
    if (!isObj(v)) throw new CatalogError(file, `rule 7.4 (translations): "${key}" must map locales to texts`);
    for (const [loc, text] of Object.entries(v)) {
      if (!LOCALE_PATTERN.test(loc) || typeof text !== 'string') throw new CatalogError(file, `rule 7.4 (translations): "${key}" has an invalid entry for ${JSON.stringify(loc)}`);
    }
  }
}

/**
 * Reads and validates every artifact for `connector`. Throws CatalogError (one line: file and rule).
 * `configurationKeys`: the connector's configuration keys, when it declares them (rule 7.3, last part).
 */
export function loadCatalog(connector: string, opts: { dir?: string; configurationKeys?: readonly string[] } = {}): Catalog {
  const dir = opts.dir ?? appConfigDir;
  const show = (rel: string): string => displayPath(join(dir, rel));

  // assets
  const assets = new Map<string, string>();
  const assetDir = join(dir, 'assets');
  if (existsSync(assetDir)) {
    for (const f of readdirSync(assetDir)) {
      const ext = f.slice(f.lastIndexOf('.')).toLowerCase();
      if (ASSET_TYPES[ext] && statSync(join(assetDir, f)).isFile()) assets.set(f, join(assetDir, f));
    }
  }

  // manifests (rule 1 and 2): the connector's own (`connectors/<id>/manifest/`) when it ships one, else the app's
  const ownManifests = `connectors/${connector}/manifest`;
  const manifestRel = existsSync(join(dir, ownManifests)) ? ownManifests : 'manifest';
  const manifestDir = join(dir, manifestRel);
  const files = existsSync(manifestDir) ? readdirSync(manifestDir).filter((f) => f.endsWith('.json')) : [];
  for (const f of files) {
    if (!LOCALE_PATTERN.test(f.replace(/\.json$/, ''))) throw new CatalogError(show(`${manifestRel}/${f}`), 'rule 7.1 (manifests): file name must be <locale>.json, e.g. en_US.json');
  }
  for (const loc of LOCALES) {
    if (!files.includes(`${loc}.json`)) throw new CatalogError(show(`${manifestRel}/${loc}.json`), `rule 7.1 (manifests): shipped locale ${loc} has no manifest`);
  }
  const manifests: Record<string, Obj> = {};
  for (const f of files.sort()) {
    const loc = f.replace(/\.json$/, '');
    manifests[loc] = readJson(dir, `${manifestRel}/${f}`);
    checkManifest(show(`${manifestRel}/${f}`), manifests[loc]!, assets);
  }
  const base = manifests.en_US!;
  for (const [loc, m] of Object.entries(manifests)) {
    if (loc === 'en_US') continue;
    const diff = compareManifests(base, m);
    if (diff) throw new CatalogError(show(`${manifestRel}/${loc}.json`), `rule 7.1 (manifests of all locales have identical keys and non-text values): ${diff}`);
  }

  // configuration form (rule 3)
  const cfgRel = `connectors/${connector}/configuration.json`;
  const configuration = readJson(dir, cfgRel);
  checkConfiguration(show(cfgRel), configuration, opts.configurationKeys);

  // translations (rule 4)
  const appTr = existsSync(join(dir, 'translation.json')) ? readJson(dir, 'translation.json') : {};
  checkTranslations(show('translation.json'), appTr);
  const trRel = `connectors/${connector}/translation.json`;
  const connTr = readJson(dir, trRel);
  checkTranslations(show(trRel), connTr);
  const dup = Object.keys(connTr).find((k) => k in appTr);
  if (dup !== undefined) throw new CatalogError(show(trRel), `rule 7.4 (translations): key "${dup}" is also in translation.json`);
  const translation: Obj = { ...appTr, ...connTr };
  for (const key of formTranslationKeys(configuration)) {
    const entry = translation[key];
    for (const loc of LOCALES) {
      const text = isObj(entry) ? entry[loc] : undefined;
      if (typeof text !== 'string' || text.trim() === '') {
        throw new CatalogError(show(trRel), `rule 7.4 (translations): key "${key}" used by ${cfgRel} has no ${loc} text`);
      }
    }
  }

  // api.json (rule 5)
  const api = readJson(dir, 'api.json');
  const apiKeys = Object.keys(api).sort();
  if (apiKeys.join(',') !== 'configuration,disconnection' || api.configuration !== '/private/configure' || api.disconnection !== '/private/disconnect') {
    throw new CatalogError(show('api.json'), 'rule 7.5 (api.json): exactly {"configuration": "/private/configure", "disconnection": "/private/disconnect"}');
  }

  return {
    dir,
    connector,
    manifests,
    locales: Object.keys(manifests).sort(),
    configuration,
    translation,
    api,
    assets,
    form: formModel(configuration),
  };
}

const cache = new Map<string, Catalog>();

/** The validated catalog of the default config/app/ directory, loaded once per connector. */
export function getCatalog(connector: string, configurationKeys?: readonly string[]): Catalog {
  let c = cache.get(connector);
  if (!c) {
    c = loadCatalog(connector, { configurationKeys });
    cache.set(connector, c);
  }
  return c;
}

/** Replaces `{{APP_BASE_URL}}` in every string value (catalog.md 3). */
export function replacePlaceholders<T>(value: T, baseUrl: string): T {
  if (typeof value === 'string') return value.split('{{APP_BASE_URL}}').join(baseUrl) as T;
  if (Array.isArray(value)) return value.map((v) => replacePlaceholders(v, baseUrl)) as T;
  if (isObj(value)) {
    const out: Obj = {};
    for (const [k, v] of Object.entries(value)) out[k] = replacePlaceholders(v, baseUrl);
    return out as T;
  }
  return value;
}
