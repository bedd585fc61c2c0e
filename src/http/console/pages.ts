/**
 * The console's pages (views only: data in, HTML out). Every value goes through the escaping `html` template.
 */
import type { PaymentStory, TenantView } from '../../app/console/queries.js';
import { PAYMENT_STATUSES } from '../../domain/payment-status.js';
import type { CommandItem, MerchantItem, OutboxItem, Overview, PaymentListItem, TransferItem, WebhookInboxItem } from '../../store/console-queries.js';
import { actionForm, barChart, fmtDate, html, money, Raw, statusBadge } from './html.js';

export interface SearchForm {
  q: string;
  tenant: string;
  status: string;
  from: string;
  to: string;
}

const short = (id: string): string => (id.length > 13 ? `${id.slice(0, 8)}…` : id);

export function overviewPage(o: Overview, since: Date): Raw {
  const today = Object.entries(o.paymentsByStatus);
  const total = today.reduce((a, [, n]) => a + (n ?? 0), 0);
  const failed = (o.paymentsByStatus.authorization_failed ?? 0) + (o.paymentsByStatus.capture_failed ?? 0) + (o.paymentsByStatus.cancellation_failed ?? 0);
  const rate = total === 0 ? '0.0' : ((failed / total) * 100).toFixed(1);
  const card = (n: string | number, l: string, href?: string): Raw =>
    html`<div class="card"><div class="n">${href ? html`<a href="${href}">${n}</a>` : n}</div><div class="l">${l}</div></div>`;
  return html`<p class="muted">Today: since ${fmtDate(since)}.</p>
<div class="cards">${card(total, 'payments today')}${card(`${rate} %`, 'failure rate today')}${card(o.outbox.pending, 'outbox pending', '/console/outbox?state=pending')}
${card(`${Math.round(o.outbox.oldestPendingAgeSeconds)} s`, 'outbox lag (oldest pending)')}${card(o.outbox.dead, 'dead outbox messages', '/console/outbox?state=dead')}
${card(o.webhooks.dead + o.webhooks.expired, 'dead / expired webhooks', '/console/webhooks?state=dead')}${card(o.webhooks.retrying, 'webhooks retrying', '/console/webhooks?state=retrying')}
${card(o.webhooks.waiting, 'webhooks held / waiting', '/console/webhooks')}${card(o.commands.dead, 'dead commands', '/console/commands?state=dead')}${card(o.commands.retrying, 'commands retrying', '/console/commands?state=retrying')}</div>
<h2>Payments per hour (last 24 h)</h2>${barChart(o.paymentsPerHour, 'payments per hour, last 24 hours')}
<h2>Failed payments per hour (last 24 h)</h2>${barChart(o.failedPerHour, 'failed payments per hour, last 24 hours', { tone: 'bad' })}
<h2>Payments today per status</h2>
<table><thead><tr><th>Status</th><th class="num">Payments</th></tr></thead><tbody>
${PAYMENT_STATUSES.map((s) => html`<tr><td>${statusBadge(s)}</td><td class="num"><a href="/console/payments?status=${s}&from=${since.toISOString().slice(0, 10)}">${o.paymentsByStatus[s] ?? 0}</a></td></tr>`)}
</tbody></table>`;
}

export function paymentsPage(f: SearchForm, items: PaymentListItem[], next: string | null, error: string | null): Raw {
  return html`<form class="search" method="get" action="/console/payments">
<label>Order ref., transaction id or PSP ref.<input name="q" value="${f.q}" size="28"></label>
<label>Tenant<input name="tenant" value="${f.tenant}" size="16"></label>
<label>Status<select name="status"><option value="">any</option>${PAYMENT_STATUSES.map((s) => html`<option${new Raw(f.status === s ? ' selected' : '')}>${s}</option>`)}</select></label>
<label>From (UTC)<input type="date" name="from" value="${f.from}"></label><label>To (UTC, inclusive)<input type="date" name="to" value="${f.to}"></label>
<button>Search</button></form>
${error ? html`<p class="notice bad">${error}</p>` : ''}
${items.length === 0 ? html`<p class="muted">No payments match.</p>` : html`<table><thead><tr><th>Created</th><th>Tenant</th><th>Order</th><th>Transaction id</th><th>Status</th><th class="num">Amount</th><th>Method</th></tr></thead><tbody>
${items.map(({ payment: p }) => html`<tr><td>${p.createdAt}</td><td>${p.tenantIdentifier}</td><td><a href="/console/payments/${encodeURIComponent(p.id)}">${p.orderReference ?? '(pre-order)'}</a></td>
<td class="mono"><a href="/console/payments/${encodeURIComponent(p.id)}">${p.transactionId}</a></td><td>${statusBadge(p.status)}</td><td class="num">${money(p.amount, p.currency)}</td><td>${p.paymentMethod}</td></tr>`)}
</tbody></table>`}
${next ? html`<p class="pager"><a href="${next}" rel="next">Older payments →</a></p>` : ''}`;
}

function actionLabel(a: string): string {
  return { 'webhook.replay': 'replayed webhook', 'webhook.discard': 'discarded webhook', 'outbox.requeue': 're-queued message', 'outbox.discard': 'discarded message', 'command.retry': 'retried command' }[a] ?? a;
}

export function paymentPage(s: PaymentStory, csrf: string | null, canAct: boolean): Raw {
  const p = s.payment;
  type Ev = { at: Date; item: Raw; audit?: boolean };
  const events: Ev[] = [
    ...s.history.map((h) => ({ at: h.createdAt, item: html`${statusBadge(h.status)} <span class="muted">#${h.seq} by ${h.trigger}${h.triggerRef ? html` <code>${h.triggerRef}</code>` : ''}</span>` })),
    ...s.audit.map((a) => ({
      at: a.at,
      audit: true,
      item: html`<strong>${a.actor}</strong> ${actionLabel(a.action)} <code>${a.targetId}</code> (was ${a.fromState}): “${a.reason}”`,
    })),
  ].sort((a, b) => a.at.getTime() - b.at.getTime());
  const back = `/console/payments/${encodeURIComponent(p.id)}`;
  return html`<dl class="kv">
<dt>Tenant</dt><dd><a href="/console/tenants/${encodeURIComponent(p.tenantIdentifier)}">${p.tenantIdentifier}</a></dd>
<dt>Order reference</dt><dd>${p.orderReference ?? '(pre-order: no order yet)'}${p.checkoutSummaryPageUrl && /^https?:\/\//i.test(p.checkoutSummaryPageUrl) ? html` · <a href="${p.checkoutSummaryPageUrl}" rel="noreferrer">shop's order page</a>` : ''}</dd>
<dt>Transaction id</dt><dd class="mono">${p.transactionId}</dd>
<dt>Payment provider</dt><dd>${s.provider ?? '(provider not enabled on this deployment)'} · ${p.mode} mode · ${p.paymentMethod} · capture ${p.captureMode}</dd>
<dt>Status</dt><dd>${statusBadge(p.status)} (version ${p.version})</dd>
<dt>Amount</dt><dd>${money(p.amount, p.currency)}</dd>
<dt>Authorized</dt><dd>${money(p.authorizedAmount, p.currency)}</dd>
<dt>Captured</dt><dd>${money(p.capturedAmount, p.currency)}${p.pendingCaptureAmount ? html` (+ ${money(p.pendingCaptureAmount, p.currency)} pending)` : ''}</dd>
<dt>Refunded</dt><dd>${money(p.refundedAmount, p.currency)}${p.pendingRefundAmount ? html` (+ ${money(p.pendingRefundAmount, p.currency)} pending)` : ''}</dd>
<dt>Released</dt><dd>${money(p.releasedAmount, p.currency)}</dd>
<dt>Created</dt><dd>${p.createdAt} · updated ${p.updatedAt}</dd>
<dt>Payment id</dt><dd class="mono">${p.id}</dd></dl>
<h2>Timeline</h2><ol class="timeline">${events.map((e) => html`<li${new Raw(e.audit ? ' class="audit"' : '')}><span class="muted">${e.at}</span> ${e.item}</li>`)}</ol>
<h2>PSP calls: create, captures and cancels</h2>${html`<table><thead><tr><th>Kind</th><th>Idempotency key</th><th>Items</th><th class="num">Amount</th><th>Outcome</th><th>PSP reference</th><th>Attempts</th><th>Created</th></tr></thead><tbody>
<tr><td>create</td><td class="mono">${p.id}</td><td></td><td class="num">${money(p.amount, p.currency)}</td><td>${statusBadge('succeeded')}</td><td class="mono">${p.transactionId}</td><td></td><td>${p.createdAt}</td></tr>
${s.operations.map((o) => html`<tr><td>${o.kind}</td><td class="mono">${o.id}</td><td>${o.orderItemIds.join(', ')}</td><td class="num">${money(o.amount, p.currency)}</td><td>${statusBadge(o.status)}${o.failureReason ? html` ${o.failureReason}` : ''}</td><td class="mono">${o.pspReference ?? ''}</td><td class="num">${o.attempts}</td><td>${o.createdAt}</td></tr>`)}</tbody></table>`}
<h2>PSP calls: refunds</h2>${
    s.refunds.length === 0
      ? html`<p class="muted">None.</p>`
      : html`<table><thead><tr><th>Idempotency key</th><th>Items</th><th class="num">Amount</th><th>Outcome</th><th>PSP refund id</th><th>Attempts</th><th>Created</th></tr></thead><tbody>
${s.refunds.map((r) => html`<tr><td class="mono">${r.id}</td><td>${r.orderItemIds.join(', ')}</td><td class="num">${money(r.amount, r.currency)}</td><td>${statusBadge(r.status)}${r.failureReason ? html` ${r.failureReason}` : ''}</td><td class="mono">${r.pspRefundId ?? ''}</td><td class="num">${r.attempts}</td><td>${r.createdAt}</td></tr>`)}</tbody></table>`
  }
<h2>Webhooks</h2>${webhookTable(s.webhooks, csrf, canAct, back)}
<h2>Messages published</h2>${outboxTable(s.messages, csrf, canAct, back, true)}
<h2>Commands received</h2>${commandTable(s.commands, csrf, canAct, back)}
${s.transfers.length > 0 ? html`<h2>Payouts</h2>${transferTable(s.transfers.map((t) => ({ ...t, pspTransferId: t.pspTransferId ?? null })))}` : ''}`;
}

export function webhookTable(rows: WebhookInboxItem[], csrf: string | null, canAct: boolean, back?: string): Raw {
  if (rows.length === 0) return html`<p class="muted">None.</p>`;
  return html`<table><thead><tr><th>Received</th><th>Tenant</th><th>Event</th><th>PSP object</th><th>State</th><th>Reason</th><th class="num">Attempts</th>${canAct ? html`<th>Action</th>` : ''}</tr></thead><tbody>
${rows.map((w) => html`<tr id="webhook-${w.id}"><td>${w.receivedAt}</td><td>${w.tenantIdentifier}</td><td>${w.eventType}<br><code>${w.eventId}</code></td><td class="mono"><a href="/console/payments?q=${encodeURIComponent(w.pspObjectId ?? '')}&tenant=${encodeURIComponent(w.tenantIdentifier)}">${w.pspObjectId ?? ''}</a></td>
<td>${statusBadge(w.state)}</td><td>${w.reason ?? ''}</td><td class="num">${w.attempts}</td>${
    canAct && csrf
      ? html`<td>${w.state === 'dead' || w.state === 'expired' ? actionForm(`/console/webhooks/${encodeURIComponent(w.id)}/replay`, csrf, 'Replay', { back }) : ''}${
          w.state === 'waiting_for_order' ? actionForm(`/console/webhooks/${encodeURIComponent(w.id)}/discard`, csrf, 'Discard', { back }) : ''
        }</td>`
      : ''
  }</tr>`)}</tbody></table>`;
}

export function outboxTable(rows: OutboxItem[], csrf: string | null, canAct: boolean, back?: string, delivered = false): Raw {
  if (rows.length === 0) return html`<p class="muted">None.</p>`;
  return html`<table><thead><tr><th>#</th><th>Channel</th><th>Ordering key</th><th>Message</th><th>Timestamp</th><th>State</th><th class="num">Attempts</th><th>Last error</th><th>Blocks</th>${canAct ? html`<th>Action</th>` : ''}</tr></thead><tbody>
${rows.map((o) => html`<tr id="outbox-${o.id}"><td class="num">${o.seq}</td><td>${o.channel}</td><td class="mono">${o.orderingKey}</td><td>${o.messageName}<br><code>${o.id}</code></td><td class="mono">${o.messageTimestamp}</td>
<td>${statusBadge(o.discarded ? 'discarded' : o.state)}${delivered && o.deliveredAt ? html`<br><span class="muted">${o.deliveredAt}</span>` : ''}</td><td class="num">${o.attempts}</td><td>${o.lastError ?? ''}</td>
<td>${o.state === 'dead' && !o.discarded ? (o.blocking > 0 ? html`<strong>${o.blocking} later message(s)</strong>` : 'nothing yet') : ''}</td>${
    canAct && csrf
      ? html`<td>${o.state === 'dead' && !o.discarded ? html`${actionForm(`/console/outbox/${encodeURIComponent(o.id)}/requeue`, csrf, 'Re-queue', { back })}${actionForm(`/console/outbox/${encodeURIComponent(o.id)}/discard`, csrf, 'Discard', { back })}` : ''}</td>`
      : ''
  }</tr>`)}</tbody></table>`;
}

export function commandTable(rows: CommandItem[], csrf: string | null, canAct: boolean, back?: string): Raw {
  if (rows.length === 0) return html`<p class="muted">None.</p>`;
  return html`<table><thead><tr><th>Received</th><th>Tenant</th><th>Command</th><th>Order</th><th>Transport</th><th>Outcome</th><th class="num">Attempts</th><th>Last error</th>${canAct ? html`<th>Action</th>` : ''}</tr></thead><tbody>
${rows.map((c) => html`<tr id="command-${c.id}"><td>${c.createdAt}</td><td>${c.tenantIdentifier ?? ''}</td><td>${c.messageName ?? '(undecodable)'}<br><code>${c.id}</code></td>
<td>${c.orderReference ? html`<a href="/console/payments?q=${encodeURIComponent(c.orderReference)}&tenant=${encodeURIComponent(c.tenantIdentifier ?? '')}">${c.orderReference}</a>` : ''}</td>
<td>${c.transport}<br><code>${short(c.transportMessageId)}</code></td><td>${statusBadge(c.state)}</td><td class="num">${c.attempts}</td><td>${c.lastError ?? ''}</td>${
    canAct && csrf ? html`<td>${c.state === 'retrying' || c.state === 'received' ? actionForm(`/console/commands/${encodeURIComponent(c.id)}/retry`, csrf, 'Retry now', { back }) : ''}</td>` : ''
  }</tr>`)}</tbody></table>`;
}

export function stateFilter(base: string, states: readonly string[], current: string, tenant: string, defaultLabel: string): Raw {
  return html`<form class="search" method="get" action="${base}"><label>State<select name="state"><option value="">${defaultLabel}</option>${states.map(
    (s) => html`<option${new Raw(current === s ? ' selected' : '')}>${s}</option>`,
  )}</select></label><label>Tenant<input name="tenant" value="${tenant}"></label><button>Show</button></form>`;
}

export function tenantsPage(rows: TenantView[]): Raw {
  if (rows.length === 0) return html`<p class="muted">No tenant has configured the app yet.</p>`;
  return html`<table><thead><tr><th>Tenant</th><th>Status</th><th>Provider</th><th>Payment methods</th><th class="num">Payments</th><th>Last webhook</th></tr></thead><tbody>
${rows.map((t) => html`<tr><td><a href="/console/tenants/${encodeURIComponent(t.id)}">${t.id}</a></td><td>${statusBadge(t.status === 'DISCONNECTED' ? 'disconnected' : t.status === 'CONNECTED' ? 'connected' : 'new')}${t.isActive ? '' : html` <span class="muted">inactive</span>`}</td>
<td>${t.provider ?? '(not enabled)'}</td><td>${t.methods.join(', ')}</td><td class="num"><a href="/console/payments?tenant=${encodeURIComponent(t.id)}">${t.payments}</a></td><td>${t.lastWebhookAt ?? 'never'}</td></tr>`)}
</tbody></table>`;
}

function transferTable(rows: Array<Pick<TransferItem, 'id' | 'kind' | 'orderReference' | 'merchantReference' | 'amount' | 'currency' | 'status' | 'pspTransferId' | 'failureMessage'>>): Raw {
  if (rows.length === 0) return html`<p class="muted">None.</p>`;
  return html`<table><thead><tr><th>Kind</th><th>Order</th><th>Merchant</th><th class="num">Amount</th><th>Status</th><th>PSP transfer id</th><th>Idempotency key</th></tr></thead><tbody>
${rows.map((t) => html`<tr><td>${t.kind}</td><td>${t.orderReference}</td><td>${t.merchantReference}</td><td class="num">${money(t.amount, t.currency)}</td><td>${statusBadge(t.status)}${t.failureMessage ? html` ${t.failureMessage}` : ''}</td><td class="mono">${t.pspTransferId ?? ''}</td><td class="mono">${t.id}</td></tr>`)}</tbody></table>`;
}

export function tenantPage(t: TenantView, merchants: MerchantItem[], transfers: TransferItem[]): Raw {
  const cfg = Object.entries(t.configuration);
  return html`<dl class="kv"><dt>Status</dt><dd>${t.status}${t.isActive ? '' : ' (inactive)'}</dd><dt>Provider</dt><dd>${t.provider ?? '(not enabled on this deployment)'}</dd>
<dt>Locale</dt><dd>${t.locale}</dd><dt>Payment methods announced</dt><dd>${t.methods.join(', ') || 'none'}</dd><dt>Last webhook</dt><dd>${t.lastWebhookAt ?? 'never'}</dd>
<dt>Payments</dt><dd><a href="/console/payments?tenant=${encodeURIComponent(t.id)}">${t.payments}</a></dd><dt>Marketplace</dt><dd>${t.marketplace ? 'yes' : 'no'}</dd></dl>
<h2>Configuration (secrets masked)</h2><table><tbody>${cfg.map(([k, v]) => html`<tr><th>${k}</th><td class="mono">${typeof v === 'string' ? v : JSON.stringify(v)}</td></tr>`)}</tbody></table>
${t.marketplace || merchants.length > 0 ? html`<h2>Merchants</h2>${
    merchants.length === 0
      ? html`<p class="muted">None.</p>`
      : html`<table><thead><tr><th>Merchant</th><th>Name</th><th>Status</th><th>PSP account</th><th>Updated</th></tr></thead><tbody>${merchants.map(
          (m) => html`<tr><td>${m.merchantReference}</td><td>${m.name ?? ''}</td><td>${statusBadge(m.status)}</td><td class="mono">${m.pspAccountId ?? ''}</td><td>${m.updatedAt}</td></tr>`,
        )}</tbody></table>`
  }<h2>Payouts and reversals</h2>${transferTable(transfers)}` : ''}`;
}

export function messagePage(message: string, links: Array<[string, string]> = []): Raw {
  return html`<p class="notice">${message}</p>${links.map(([href, label]) => html`<p><a href="${href}">${label}</a></p>`)}`;
}

export function loginPage(opts: { local: boolean; oidc: boolean; error: string | null }): Raw {
  return html`<div class="login">${opts.error ? html`<p class="notice bad">${opts.error}</p>` : ''}${
    opts.local
      ? html`<form method="post" action="/console/login"><label>User<input name="user" autocomplete="username" required></label><label>Password<input type="password" name="password" autocomplete="current-password" required></label><button>Sign in</button></form>`
      : ''
  }${opts.oidc ? html`<p><a href="/console/auth/oidc">Sign in with single sign-on</a></p>` : ''}${!opts.local && !opts.oidc ? html`<p>Console access is not configured: set CONSOLE_USERS or CONSOLE_OIDC_ISSUER (docs/console.md).</p>` : ''}</div>`;
}
