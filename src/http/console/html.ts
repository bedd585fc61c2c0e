/**
 * Server-rendered HTML for the console: an escaping tagged template, the page layout, small inline SVG charts.
 * Nothing is loaded from outside the app (one stylesheet at /console/assets/console.css, no script).
 */
import { escapeHtml } from '../../html.js';

export class Raw {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export const esc = (s: string): string => escapeHtml(s);

function render(v: unknown): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Raw) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v instanceof Date) return esc(fmtDate(v));
  return esc(String(v));
}

/** `html\`<p>${value}</p>\`` escapes every value except Raw (and arrays of Raw). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Raw {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new Raw(out);
}

export const fmtDate = (d: Date | null): string => (d ? d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');

/** Minor units as a decimal amount with its currency (2 decimals; 0 for the usual zero-decimal currencies). */
const ZERO_DECIMAL = new Set(['JPY', 'KRW', 'VND', 'CLP', 'ISK', 'UGX', 'XAF', 'XOF', 'PYG', 'RWF', 'BIF', 'DJF', 'GNF', 'KMF', 'MGA', 'VUV', 'XPF']);
export function money(minor: number, currency: string): string {
  const d = ZERO_DECIMAL.has(currency) ? 0 : 2;
  return `${(minor / 10 ** d).toFixed(d)} ${currency}`;
}

export interface PageContext {
  title: string;
  user: { id: string; name: string; role: string } | null;
  csrf: string | null;
  active?: 'overview' | 'payments' | 'webhooks' | 'outbox' | 'commands' | 'tenants';
}

const NAV: Array<[NonNullable<PageContext['active']>, string, string]> = [
  ['overview', '/console', 'Overview'],
  ['payments', '/console/payments', 'Payments'],
  ['webhooks', '/console/webhooks', 'Webhooks'],
  ['outbox', '/console/outbox', 'Outbox'],
  ['commands', '/console/commands', 'Commands'],
  ['tenants', '/console/tenants', 'Tenants'],
];

export function layout(ctx: PageContext, body: Raw): string {
  const nav = ctx.user
    ? html`<nav>${NAV.map(([k, href, label]) => html`<a href="${href}"${new Raw(ctx.active === k ? ' aria-current="page"' : '')}>${label}</a>`)}
      <span class="who">${ctx.user.name} (${ctx.user.role})</span>
      <form method="post" action="/console/logout" class="inline"><input type="hidden" name="csrf" value="${ctx.csrf ?? ''}"><button>Sign out</button></form></nav>`
    : html``;
  return `<!doctype html>${html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${ctx.title} · Open ACP Pay console</title><link rel="stylesheet" href="/console/assets/console.css"></head>
<body><header><a class="brand" href="/console">Open ACP Pay</a>${nav}</header><main><h1>${ctx.title}</h1>${body}</main></body></html>`}`;
}

export function statusBadge(s: string): Raw {
  const tone = /dead|failed|expired|rejected/.test(s) ? 'bad' : /retrying|waiting|pending|requested|received|new/.test(s) ? 'warn' : 'ok';
  return html`<span class="badge ${tone}">${s}</span>`;
}

/** A small bar chart (inline SVG): one bar per value, labelled by title. */
export function barChart(values: number[], label: string, opts: { height?: number; tone?: 'ok' | 'bad' } = {}): Raw {
  const h = opts.height ?? 60;
  const w = 6;
  const gap = 2;
  const max = Math.max(1, ...values);
  const bars = values.map((v, i) => {
    const bh = Math.round((v / max) * (h - 2));
    return html`<rect x="${i * (w + gap)}" y="${h - bh}" width="${w}" height="${bh}"><title>${v}</title></rect>`;
  });
  return html`<svg class="chart ${opts.tone ?? 'ok'}" role="img" aria-label="${label}" width="${values.length * (w + gap)}" height="${h}" viewBox="0 0 ${values.length * (w + gap)} ${h}"><rect class="bg" x="0" y="0" width="${values.length * (w + gap)}" height="${h}"></rect>${bars}</svg>`;
}

/** Hidden CSRF field, reason input and submit button of one action form. */
export function actionForm(action: string, csrf: string, label: string, opts: { back?: string } = {}): Raw {
  return html`<form method="post" action="${action}" class="action"><input type="hidden" name="csrf" value="${csrf}">${
    opts.back ? html`<input type="hidden" name="back" value="${opts.back}">` : ''
  }<input name="reason" required maxlength="1000" placeholder="reason (required)" aria-label="reason"><button>${label}</button></form>`;
}

export const CSS = `*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;background:#f6f7f9}
header{display:flex;align-items:center;gap:1.5rem;padding:.6rem 1.2rem;background:#1d2a44;color:#fff}header a{color:#cfd8ea;text-decoration:none}
.brand{font-weight:700;color:#fff!important}nav{display:flex;gap:1rem;align-items:center;flex:1}nav a[aria-current]{color:#fff;border-bottom:2px solid #7fb0ff}
.who{margin-left:auto;color:#9fb0cc}main{padding:1rem 1.2rem;max-width:1400px}h1{font-size:1.35rem;margin:.2rem 0 1rem}h2{font-size:1.05rem;margin:1.4rem 0 .5rem}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde2ea}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e8ebf0;vertical-align:top}
th{background:#eef1f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.badge{display:inline-block;padding:0 .45rem;border-radius:.6rem;font-size:12px}.badge.ok{background:#dff3e4;color:#17603a}.badge.warn{background:#fff1cf;color:#7a5200}.badge.bad{background:#fde0e0;color:#8c1d1d}
form.search{display:flex;flex-wrap:wrap;gap:.5rem;margin-bottom:1rem;align-items:end}form.search label{display:flex;flex-direction:column;font-size:12px;color:#556}
input,select,button{font:inherit;padding:.25rem .4rem;border:1px solid #b9c2d0;border-radius:4px;background:#fff}button{white-space:nowrap;background:#2a5bd7;color:#fff;border-color:#2a5bd7;cursor:pointer}
form.inline{display:inline}header button{background:transparent;border-color:#55658a;color:#cfd8ea}form.action{display:flex;gap:.3rem}form.action input{width:14rem}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin-bottom:1rem}.card{background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:.6rem .9rem;min-width:10rem}
.card .n{font-size:1.5rem;font-weight:700}.card .l{font-size:12px;color:#667}.chart rect{fill:#2a5bd7}.chart.bad rect{fill:#c73636}.chart rect.bg{fill:#e6eaf1}
ol.timeline{list-style:none;padding:0;margin:0;border-left:3px solid #c9d3e4}ol.timeline li{margin:0 0 .5rem 0;padding:.1rem .8rem;position:relative}
ol.timeline li::before{content:"";position:absolute;left:-.45rem;top:.45rem;width:.6rem;height:.6rem;border-radius:50%;background:#2a5bd7}ol.timeline li.audit::before{background:#c77a00}
.muted{color:#778}.notice{background:#fff;border-left:4px solid #2a5bd7;padding:.6rem .9rem;margin:.5rem 0 1rem}.notice.bad{border-color:#c73636}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;background:#fff;border:1px solid #dde2ea;padding:.6rem .9rem}dl.kv dt{color:#556}dl.kv dd{margin:0}
.login{max-width:22rem;background:#fff;border:1px solid #dde2ea;padding:1rem 1.2rem;border-radius:6px}.login label{display:block;margin:.4rem 0}.login input{width:100%}
.pager{margin-top:.8rem}`;
