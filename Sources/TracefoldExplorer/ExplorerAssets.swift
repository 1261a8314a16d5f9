// Generated from Sources/TracefoldExplorer/assets by scripts/embed-explorer.sh;
// ExplorerTests checks that the two stay equal.
extension ExplorerAssets {
    /// File name → contents, as in the assets folder.
    static let files: [String: String] = [
        "api.js": ##"""
// The public JSON endpoints, and nothing else. URLs are built on
// location.origin: a page opened as http://user:pass@host/ui/ would make
// fetch refuse URLs resolved against it.

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function apiURL(path, params) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v == null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => url.searchParams.append(k, x));
    else url.searchParams.set(k, v);
  }
  return url;
}

export async function getJSON(path, params) {
  const response = await fetch(apiURL(path, params), { headers: { accept: 'application/json' }, credentials: 'same-origin' });
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) throw new APIError(response.status, body?.message || `${response.status} ${response.statusText}`);
  return body;
}

/** A path segment. */
export const seg = (s) => encodeURIComponent(s);

"""##,
        "app.js": ##"""
// The explorer: one page at a time in <main>, chosen by the URL, which holds
// each page's whole state (filters, selection, time range) so that a link
// reproduces it.
import { tracesPage } from './traces.js';
import { tracePage } from './trace.js';
import { sessionPage } from './session.js';
import { dashboardPage } from './dashboard.js';
import { h } from './dom.js';

const routes = [
  [/^\/ui\/?$/, 'traces', () => tracesPage],
  [/^\/ui\/traces\/([^/]+)\/?$/, 'traces', (m) => (main, ctx) => tracePage(main, { ...ctx, id: decodeURIComponent(m[1]) })],
  [/^\/ui\/sessions\/([^/]+)\/?$/, 'traces', (m) => (main, ctx) => sessionPage(main, { ...ctx, id: decodeURIComponent(m[1]) })],
  [/^\/ui\/dashboard\/?$/, 'dashboard', () => dashboardPage],
];

let cleanup = null;
let generation = 0;

/** Goes to `url` (same origin), adding a history entry unless `replace`. */
export function navigate(url, { replace = false } = {}) {
  history[replace ? 'replaceState' : 'pushState'](null, '', url);
  render();
}

/** Rewrites the URL's query without re-rendering: state a page already shows. */
export function setQuery(params) {
  const url = new URL(location.href);
  url.search = new URLSearchParams(Object.entries(params).filter(([, v]) => v != null && v !== '' && v !== false)).toString();
  history.replaceState(null, '', url);
}

export function showStatus(message) {
  const status = document.getElementById('status');
  status.textContent = message || '';
  status.hidden = !message;
}

async function render() {
  const main = document.getElementById('main');
  if (cleanup) cleanup();
  cleanup = null;
  showStatus('');
  const mine = ++generation;
  const match = routes.map(([re, nav, page]) => [re.exec(location.pathname), nav, page]).find(([m]) => m);
  for (const a of document.querySelectorAll('header nav a')) {
    if (match && a.dataset.page === match[1]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.replaceChildren();
  if (!match) {
    document.title = 'Not found · tracefold';
    main.append(h('h1', null, 'Not found'), h('p', null, 'No explorer page at ', h('code', null, location.pathname), '.'));
    return;
  }
  const [m, , page] = match;
  const ctx = { query: new URLSearchParams(location.search), isCurrent: () => mine === generation };
  try {
    const done = await page(m)(main, ctx);
    if (mine === generation) cleanup = typeof done === 'function' ? done : null;
    else if (typeof done === 'function') done();
  } catch (error) {
    if (mine !== generation) return;
    main.replaceChildren(h('h1', null, 'Could not load this page'), h('p', { class: 'error-text' }, error.message || String(error)));
  }
}

document.addEventListener('click', (event) => {
  const a = event.target.closest('a[data-nav]');
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', render);
render();

"""##,
        "charts.js": ##"""
// Small SVG charts, drawn here: no chart library is reachable offline.
// Colours come from CSS classes, so they follow the colour scheme.
import { h, fmt } from './dom.js';

const shorten = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** Horizontal bars, one per row: [{label, value}], values ≥ 0. */
export function barChart({ title, rows, format }) {
  const width = 460, rowHeight = 24, labelWidth = 150, valueWidth = 110, top = 4;
  const max = Math.max(0, ...rows.map((r) => r.value || 0));
  const barSpace = width - labelWidth - valueWidth;
  const height = top * 2 + rows.length * rowHeight;
  const svg = h('svg:svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': title, class: 'chart bars' });
  rows.forEach((r, i) => {
    const y = top + i * rowHeight;
    const w = max > 0 ? Math.max((r.value / max) * barSpace, r.value > 0 ? 1 : 0) : 0;
    const g = h('svg:g', null, h('svg:title', null, `${r.label}: ${format(r.value)}`));
    g.append(
      h('svg:text', { x: labelWidth - 6, y: y + rowHeight / 2, class: 'axis-label', 'text-anchor': 'end', 'dominant-baseline': 'middle' }, shorten(r.label, 22)),
      h('svg:rect', { x: labelWidth, y: y + 4, width: w.toFixed(1), height: rowHeight - 8, class: r.error ? 'bar bar-error' : 'bar', rx: 2 }),
      h('svg:text', { x: labelWidth + w + 6, y: y + rowHeight / 2, class: 'value-label', 'dominant-baseline': 'middle' }, format(r.value)),
    );
    svg.append(g);
  });
  return h('figure', { class: 'chart-figure' }, h('figcaption', null, title), svg);
}

/** Vertical bars over time: [{t (ms), value, errors}], one interval apart. */
export function timeChart({ title, buckets, unit }) {
  const width = 1200, height = 200, left = 84, bottom = 22, top = 10, right = 8;
  const max = Math.max(1, ...buckets.map((b) => b.value));
  const plotW = width - left - right, plotH = height - top - bottom;
  const bw = buckets.length ? plotW / buckets.length : plotW;
  const y = (v) => top + plotH - (v / max) * plotH;
  const svg = h('svg:svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title, class: 'chart time' });
  svg.append(
    h('svg:line', { x1: left, x2: width - right, y1: top + plotH, y2: top + plotH, class: 'axis' }),
    h('svg:text', { x: left - 6, y: top + 8, 'text-anchor': 'end', class: 'axis-label' }, fmt.count(max, unit)),
    h('svg:text', { x: left - 6, y: top + plotH, 'text-anchor': 'end', class: 'axis-label' }, `0 ${unit}s`),
  );
  buckets.forEach((b, i) => {
    const x = left + i * bw;
    const g = h('svg:g', null, h('svg:title', null, `${fmt.time(new Date(b.t).toISOString())}: ${fmt.count(b.value, unit)}, ${b.errors} with an error`));
    if (b.value > 0) g.append(h('svg:rect', { x: (x + 0.5).toFixed(1), y: y(b.value).toFixed(1), width: Math.max(bw - 1, 0.5).toFixed(1), height: (top + plotH - y(b.value)).toFixed(1), class: 'bar' }));
    if (b.errors > 0) g.append(h('svg:rect', { x: (x + 0.5).toFixed(1), y: y(b.errors).toFixed(1), width: Math.max(bw - 1, 0.5).toFixed(1), height: (top + plotH - y(b.errors)).toFixed(1), class: 'bar bar-error' }));
    svg.append(g);
  });
  // About six time labels along the axis.
  const step = Math.max(1, Math.ceil(buckets.length / 6));
  for (let i = 0; i < buckets.length; i += step) {
    svg.append(h('svg:text', { x: left + i * bw, y: height - 6, class: 'axis-label' }, `${fmt.clock(buckets[i].t)} UTC`));
  }
  return h('figure', { class: 'chart-figure wide' }, h('figcaption', null, title), svg);
}

"""##,
        "dashboard.js": ##"""
// The dashboard: /api/metrics/summary grouped by a metadata key, user,
// model, environment or name over a time range, as a table and bar charts,
// and /api/metrics/timeseries as traces (and errors) per interval. The URL
// holds groupBy, key, range or from/to.
import { h, fmt, fromLocalInput, toLocalInput } from './dom.js';
import { getJSON } from './api.js';
import { navigate, showStatus } from './app.js';
import { barChart, timeChart } from './charts.js';

const RANGES = { '15m': 15 * 60, '1h': 3600, '6h': 6 * 3600, '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400 };
const GROUPS = [['metadata', 'Metadata'], ['userId', 'User'], ['model', 'Model'], ['environment', 'Environment'], ['name', 'Trace name']];
/** Interval lengths, seconds, from which the chart picks the first giving ≤ 120 bars. */
const INTERVALS = [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400];

export async function dashboardPage(main, { query, isCurrent }) {
  document.title = 'Dashboard · tracefold';
  const state = {
    groupBy: GROUPS.some(([v]) => v === query.get('groupBy')) ? query.get('groupBy') : 'metadata', key: query.get('key') || 'tenant',
    range: query.get('range') || (query.get('from') ? '' : '1h'), from: query.get('from') || '', to: query.get('to') || '',
  };
  const now = Date.now();
  const to = state.range ? now : (Date.parse(state.to) || now);
  const from = state.range ? to - RANGES[state.range] * 1000 : (Date.parse(state.from) || to - 86400000);

  const groupSelect = h('select', { name: 'groupBy', id: 'group-by', 'aria-label': 'Group by' }, GROUPS.map(([v, l]) => h('option', { value: v, selected: v === state.groupBy }, l)));
  const keyInput = h('input', { name: 'key', id: 'group-key', value: state.key, 'aria-label': 'Metadata key', placeholder: 'tenant' });
  const rangeSelect = h('select', { name: 'range', id: 'range', 'aria-label': 'Time range' },
    [...Object.keys(RANGES).map((r) => h('option', { value: r, selected: r === state.range }, `last ${r}`)), h('option', { value: '', selected: !state.range }, 'custom')]);
  const fromInput = h('input', { type: 'datetime-local', step: 1, name: 'from', 'aria-label': 'From (UTC)', value: toLocalInput(new Date(from).toISOString()) });
  const toInput = h('input', { type: 'datetime-local', step: 1, name: 'to', 'aria-label': 'To (UTC)', value: toLocalInput(new Date(to).toISOString()) });
  const keyField = h('label', { class: 'field', hidden: state.groupBy !== 'metadata' }, h('span', null, 'Key'), keyInput);
  groupSelect.addEventListener('change', () => { keyField.hidden = groupSelect.value !== 'metadata'; });
  const form = h('form', { class: 'filters', 'aria-label': 'Dashboard settings' },
    h('label', { class: 'field' }, h('span', null, 'Group by'), groupSelect), keyField,
    h('label', { class: 'field' }, h('span', null, 'Range'), rangeSelect),
    h('label', { class: 'field' }, h('span', null, 'From (UTC)'), fromInput),
    h('label', { class: 'field' }, h('span', null, 'To (UTC)'), toInput),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit' }, 'Apply')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const q = new URLSearchParams({ groupBy: groupSelect.value });
    if (groupSelect.value === 'metadata') q.set('key', keyInput.value.trim() || 'tenant');
    if (rangeSelect.value) q.set('range', rangeSelect.value);
    else {
      q.set('from', fromLocalInput(fromInput.value));
      q.set('to', fromLocalInput(toInput.value));
    }
    navigate(`/ui/dashboard?${q}`);
  });

  const seconds = (to - from) / 1000;
  const interval = INTERVALS.find((i) => seconds / i <= 120) || 86400;
  const groupBy = state.groupBy === 'metadata' ? `metadata.${state.key}` : state.groupBy;
  const span = { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
  main.append(h('div', { class: 'page-head' }, h('h1', null, 'Dashboard')), form);
  let summary, series;
  try {
    [summary, series] = await Promise.all([
      getJSON('/api/metrics/summary', { groupBy, ...span }),
      getJSON('/api/metrics/timeseries', { ...span, interval }),
    ]);
  } catch (error) {
    if (isCurrent()) showStatus(`Could not load the dashboard: ${error.message}`);
    return;
  }
  if (!isCurrent()) return;
  const per = interval === 60 ? 'minute' : `${interval / 60} minutes`;
  const buckets = series.data.map((b) => ({ t: Date.parse(b.timestamp), value: b.traces, errors: b.errorTraces }));
  main.append(h('section', { class: 'panel', 'aria-label': 'Traces over time' },
    timeChart({ title: `Traces per ${per} (those with an error in red), ${fmt.time(span.from)} – ${fmt.time(span.to)}`, buckets, unit: 'trace' })));

  const rows = summary.data;
  const name = (g) => (g == null ? '(none)' : String(g));
  const label = state.groupBy === 'metadata' ? `metadata.${state.key}` : GROUPS.find(([v]) => v === state.groupBy)[1];
  if (!rows.length) {
    main.append(h('p', { class: 'empty', id: 'dashboard-empty' }, `No traces in this range to group by ${label}.`));
    return;
  }
  const top = rows.slice(0, 12);
  const chart = (title, value, format, error) => barChart({ title, rows: top.map((r) => ({ label: name(r.group), value: value(r), error })), format });
  main.append(h('section', { class: 'charts', 'aria-label': `Charts by ${label}` },
    chart(`Traces by ${label}`, (r) => r.traces, (v) => fmt.count(v, 'trace')),
    chart(`Error rate by ${label} (of observations)`, (r) => (r.observations ? r.errors / r.observations : 0), fmt.percent, true),
    chart(`p95 latency by ${label}`, (r) => r.latencyP95 || 0, fmt.duration),
    chart(`Tokens by ${label}`, (r) => r.totalTokens, fmt.tokens),
    chart(`Cost by ${label}`, (r) => r.totalCost, fmt.cost)));
  main.append(h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'dashboard-table' },
    h('caption', null, `By ${label}`),
    h('thead', null, h('tr', null, [label, 'Traces', 'Observations', 'Errors', 'Error rate', 'p50 latency', 'p95 latency', 'Input tokens', 'Output tokens', 'Total tokens', 'Cost']
      .map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, rows.map((r) => h('tr', { 'data-group': name(r.group) },
      h('th', { scope: 'row' }, name(r.group)),
      h('td', { class: 'num' }, fmt.count(r.traces, 'trace')),
      h('td', { class: 'num' }, fmt.count(r.observations, 'observation')),
      h('td', { class: 'num' }, fmt.count(r.errors, 'error')),
      h('td', { class: 'num' }, fmt.percent(r.observations ? r.errors / r.observations : 0)),
      h('td', { class: 'num' }, fmt.duration(r.latencyP50)),
      h('td', { class: 'num' }, fmt.duration(r.latencyP95)),
      h('td', { class: 'num' }, fmt.tokens(r.inputTokens)),
      h('td', { class: 'num' }, fmt.tokens(r.outputTokens)),
      h('td', { class: 'num' }, fmt.tokens(r.totalTokens)),
      h('td', { class: 'num' }, fmt.cost(r.totalCost))))))));
}

"""##,
        "dom.js": ##"""
// Every piece of data reaches the page as text (textContent, setAttribute),
// never as markup: a span named <img src=x onerror=…> shows those characters.
const SVG_NS = 'http://www.w3.org/2000/svg';

/** An element: h('a', {href, class, onclick}, child, …); children may be
 * strings, numbers, nodes, arrays or null. `svg:rect` makes an SVG element. */
export function h(tag, attrs, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of [children].flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A link the app follows without reloading the page. */
export function link(href, ...children) {
  return h('a', { href, 'data-nav': true }, ...children);
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Every number carries its unit. */
export const fmt = {
  /** "2026-12-01 22:52:16.733 UTC" */
  time(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)} UTC`;
  },
  /** HH:MM UTC, for chart axes. */
  clock(ms) {
    const d = new Date(ms);
    return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  },
  /** Seconds, shown in the unit that reads best. */
  duration(seconds) {
    if (seconds == null || Number.isNaN(seconds)) return '—';
    const ms = seconds * 1000;
    if (ms < 1) return `${Math.round(ms * 1000)} µs`;
    if (ms < 10) return `${ms.toFixed(2)} ms`;
    if (ms < 1000) return `${ms.toFixed(1)} ms`;
    if (seconds < 120) return `${seconds.toFixed(2)} s`;
    return `${(seconds / 60).toFixed(1)} min`;
  },
  /** US dollars, with as many digits as a small cost needs. */
  cost(usd) {
    if (usd == null) return '—';
    if (usd === 0) return '$0';
    const digits = usd >= 1 ? 2 : Math.min(10, Math.max(2, 2 - Math.floor(Math.log10(Math.abs(usd))) + 2));
    return `$${usd.toFixed(digits).replace(/(\.\d*?[1-9])0+$/, '$1')}`;
  },
  tokens(n) {
    if (n == null) return '—';
    return `${Number(n).toLocaleString('en-US')} ${n === 1 ? 'token' : 'tokens'}`;
  },
  count(n, unit) {
    return `${Number(n).toLocaleString('en-US')} ${unit}${n === 1 ? '' : 's'}`;
  },
  percent(fraction) {
    if (fraction == null || Number.isNaN(fraction)) return '—';
    return `${(fraction * 100).toFixed(fraction < 0.1 ? 1 : 0)} %`;
  },
};

/** ISO time → the value of an <input type=datetime-local> in UTC. */
export function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return d.toISOString().slice(0, 19);
}

/** An <input type=datetime-local> value, read as UTC → ISO. */
export function fromLocalInput(value) {
  if (!value) return '';
  const d = new Date(`${value}Z`);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/** A level badge; ERROR and WARNING stand out. */
export function levelBadge(level) {
  return h('span', { class: `badge level level-${level || 'DEFAULT'}` }, level || 'DEFAULT');
}

/** Tags as a list, so that they read apart. */
export function tagList(tags) {
  return tags && tags.length ? h('ul', { class: 'tags', 'aria-label': 'Tags' }, tags.map((t) => h('li', { class: 'tag' }, t))) : null;
}

export function typeBadge(type) {
  return h('span', { class: `badge type type-${type || 'SPAN'}` }, type || 'SPAN');
}

/** A definition list from [term, value] pairs; null values are skipped. */
export function dl(pairs, attrs) {
  return h('dl', attrs, pairs.filter(([, v]) => v != null && v !== '').map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

export function section(title, attrs, ...children) {
  const id = attrs?.id ? `${attrs.id}-title` : undefined;
  return h('section', { ...attrs, 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

"""##,
        "favicon.svg": ##"""
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#3b6fd8"/><path d="M3 4h10M5 8h8M7 12h6" stroke="#fff" stroke-width="2" stroke-linecap="round"/></svg>

"""##,
        "index.html": ##"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>tracefold</title>
<link rel="icon" href="/ui/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/ui/assets/style.css">
<script type="module" src="/ui/assets/app.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="/ui/" data-nav>tracefold</a>
  <nav aria-label="Pages">
    <a href="/ui/" data-nav data-page="traces">Traces</a>
    <a href="/ui/dashboard" data-nav data-page="dashboard">Dashboard</a>
  </nav>
</header>
<div id="status" role="alert" aria-live="assertive" hidden></div>
<main id="main" tabindex="-1"><p class="loading">Loading…</p></main>
<noscript><p>The tracefold explorer needs JavaScript. The same data is at /api/public/traces.</p></noscript>
</body>
</html>

"""##,
        "jsonview.js": ##"""
// A collapsible JSON view: objects and arrays are <details> (keyboard and
// screen readers get them for free), long strings are folded.
import { h } from './dom.js';

const FOLD = 240;
const FIRST_ITEMS = 100;

export function jsonView(value, { label = 'JSON value', open = 2 } = {}) {
  if (value === undefined) return h('p', { class: 'muted' }, 'none');
  return h('div', { class: 'json', role: 'group', 'aria-label': label }, node(value, 0, open));
}

function node(value, depth, open) {
  if (value === null) return h('span', { class: 'j-null' }, 'null');
  if (typeof value === 'string') return stringNode(value);
  if (typeof value === 'number') return h('span', { class: 'j-num' }, String(value));
  if (typeof value === 'boolean') return h('span', { class: 'j-bool' }, String(value));
  const isArray = Array.isArray(value);
  const entries = isArray ? value.map((v, i) => [i, v]) : Object.entries(value);
  if (entries.length === 0) return h('span', { class: 'j-punct' }, isArray ? '[]' : '{}');
  const summary = isArray ? `[${entries.length} ${entries.length === 1 ? 'item' : 'items'}]` : `{${entries.length} ${entries.length === 1 ? 'key' : 'keys'}}`;
  const details = h('details', { open: depth < open }, h('summary', null, h('span', { class: 'j-punct' }, summary)));
  const list = h('ul', { class: 'j-list' });
  const show = (from, to) => {
    for (const [k, v] of entries.slice(from, to)) {
      list.append(h('li', null, h('span', { class: isArray ? 'j-index' : 'j-key' }, isArray ? `${k}` : `${k}`), h('span', { class: 'j-punct' }, ': '), node(v, depth + 1, open)));
    }
  };
  show(0, FIRST_ITEMS);
  details.append(list);
  if (entries.length > FIRST_ITEMS) {
    const more = h('button', { type: 'button', class: 'link-button' }, `show ${entries.length - FIRST_ITEMS} more`);
    more.addEventListener('click', () => {
      show(FIRST_ITEMS, entries.length);
      more.remove();
    });
    details.append(more);
  }
  return details;
}

function stringNode(s) {
  if (s.length <= FOLD) return h('span', { class: 'j-str' }, JSON.stringify(s));
  const text = h('span', { class: 'j-str' }, `${JSON.stringify(s.slice(0, FOLD)).slice(0, -1)}…`);
  const toggle = h('button', { type: 'button', class: 'link-button', 'aria-expanded': 'false' }, `show all ${s.length.toLocaleString('en-US')} characters`);
  toggle.addEventListener('click', () => {
    const expanded = toggle.getAttribute('aria-expanded') === 'true';
    text.textContent = expanded ? `${JSON.stringify(s.slice(0, FOLD)).slice(0, -1)}…` : JSON.stringify(s);
    toggle.setAttribute('aria-expanded', String(!expanded));
    toggle.textContent = expanded ? `show all ${s.length.toLocaleString('en-US')} characters` : 'fold';
  });
  return h('span', { class: 'j-long' }, text, ' ', toggle);
}

"""##,
        "session.js": ##"""
// A session: its traces in time order, each with its input and output.
import { h, link, fmt, levelBadge } from './dom.js';
import { getJSON, seg } from './api.js';
import { jsonView } from './jsonview.js';

export async function sessionPage(main, { id, isCurrent }) {
  document.title = 'Session · tracefold';
  const session = await getJSON(`/api/public/sessions/${seg(id)}`);
  if (!isCurrent()) return;
  document.title = `${session.id} · Session · tracefold`;
  const traces = [...(session.traces || [])].sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp) || a.id.localeCompare(b.id));
  const cost = traces.reduce((sum, t) => sum + (t.totalCost || 0), 0);
  main.append(
    h('div', { class: 'page-head' }, h('div', null,
      h('p', { class: 'crumbs' }, link('/ui/', 'Traces'), ' / session'),
      h('h1', null, 'Session ', h('code', null, session.id)))),
    h('dl', { class: 'facts' },
      h('dt', null, 'Started'), h('dd', null, fmt.time(session.createdAt)),
      h('dt', null, 'Traces'), h('dd', null, fmt.count(traces.length, 'trace')),
      h('dt', null, 'Cost'), h('dd', null, fmt.cost(cost)),
      h('dt', null, 'Environment'), h('dd', null, session.environment || '—')),
    h('ol', { class: 'session-traces', id: 'session-traces', 'aria-label': 'Traces of the session, oldest first' },
      traces.map((t) => h('li', { class: `session-trace level-row-${t.level}`, 'data-trace-id': t.id },
        h('div', { class: 'entry-head' }, link(`/ui/traces/${seg(t.id)}`, t.name || t.id), ' ', levelBadge(t.level),
          h('span', { class: 'muted entry-time' }, `${fmt.time(t.timestamp)} · ${fmt.duration(t.latency)} · ${fmt.cost(t.totalCost)}`)),
        h('div', { class: 'io' },
          h('div', null, h('h3', null, 'Input'), jsonView(t.input, { label: `Input of ${t.name || t.id}` })),
          h('div', null, h('h3', null, 'Output'), jsonView(t.output, { label: `Output of ${t.name || t.id}` })))))));
}

"""##,
        "style.css": ##"""
/* tracefold explorer. Light and dark follow prefers-color-scheme. */
:root {
  --bg: #ffffff; --fg: #1b1f24; --muted: #5c6570; --line: #d9dee4; --panel: #f5f7f9; --hover: #eef2f7;
  --accent: #3b6fd8; --accent-fg: #ffffff; --error: #c62828; --error-bg: #fdecea; --warn: #9a6700; --warn-bg: #fff4d6;
  --focus: #1d4ed8; --code: #0b4f9e; --str: #0a7d36; --num: #a34e00;
  --t-span: #64748b; --t-generation: #7c3aed; --t-event: #0891b2; --t-agent: #2563eb; --t-tool: #b45309; --t-retriever: #059669;
  color-scheme: light dark;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #111418; --fg: #e6e9ed; --muted: #9aa4af; --line: #2c333b; --panel: #181d23; --hover: #1f262e;
    --accent: #6d9cf5; --accent-fg: #0b1020; --error: #ff6b6b; --error-bg: #3a1717; --warn: #f0b43c; --warn-bg: #3a2e10;
    --focus: #8db4ff; --code: #8ec5ff; --str: #7fd69b; --num: #f3a65f;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); }
a { color: var(--accent); }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
:focus-visible { outline: 2px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--bg); padding: 4px 8px; z-index: 10; }
.skip:focus { left: 8px; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.muted { color: var(--muted); }
.nowrap { white-space: nowrap; }

header.top { display: flex; gap: 24px; align-items: center; padding: 10px 20px; border-bottom: 1px solid var(--line); background: var(--panel); }
.brand { font-weight: 700; font-size: 16px; text-decoration: none; color: var(--fg); }
header nav { display: flex; gap: 16px; }
header nav a { text-decoration: none; padding: 4px 2px; color: var(--muted); }
header nav a[aria-current="page"] { color: var(--fg); border-bottom: 2px solid var(--accent); }
main { padding: 16px 20px 40px; max-width: 1600px; margin: 0 auto; }
main:focus { outline: none; }
#status { margin: 8px 20px 0; padding: 8px 12px; border-radius: 6px; background: var(--error-bg); color: var(--error); }
h1 { font-size: 20px; margin: 4px 0 12px; }
h2 { font-size: 16px; margin: 8px 0; }
h3 { font-size: 14px; margin: 16px 0 6px; }
h4 { font-size: 13px; margin: 10px 0 4px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.page-head { display: flex; justify-content: space-between; align-items: flex-end; gap: 12px; flex-wrap: wrap; }
.crumbs { margin: 0; color: var(--muted); }
.toolbar { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin-bottom: 6px; }
.check { display: inline-flex; gap: 4px; align-items: center; }

button { font: inherit; padding: 5px 12px; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: var(--accent-fg); cursor: pointer; }
button.secondary { background: transparent; color: var(--fg); border-color: var(--line); }
button.link-button { background: none; border: none; color: var(--accent); padding: 0 2px; text-decoration: underline; }
input, select { font: inherit; padding: 4px 6px; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); min-width: 0; }

.filters { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 8px 12px; padding: 12px; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; margin-bottom: 12px; }
.field { display: flex; flex-direction: column; gap: 2px; font-size: 12px; color: var(--muted); }
.field[hidden] { display: none; }
.form-actions { display: flex; gap: 8px; align-items: flex-end; }

.table-wrap { overflow-x: auto; }
table.data { border-collapse: collapse; width: 100%; }
table.data th, table.data td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.data thead th { font-size: 12px; color: var(--muted); font-weight: 600; white-space: nowrap; }
table.data tbody tr:hover { background: var(--hover); }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.empty { color: var(--muted); text-align: center; padding: 24px; }
tr.level-row-ERROR { background: var(--error-bg); }
tr.level-row-ERROR td:first-child { box-shadow: inset 3px 0 var(--error); }
.pager { display: flex; gap: 16px; justify-content: center; padding: 12px; }

.badge { display: inline-block; font-size: 11px; line-height: 16px; padding: 0 6px; border-radius: 8px; border: 1px solid var(--line); white-space: nowrap; font-weight: 600; }
.level-ERROR.badge, .badge.level-ERROR { background: var(--error); color: #fff; border-color: var(--error); }
.badge.level-WARNING { background: var(--warn-bg); color: var(--warn); border-color: var(--warn); }
.badge.level-DEFAULT, .badge.level-DEBUG { color: var(--muted); }
.badge.warn { color: var(--warn); border-color: var(--warn); }
.badge.ext { color: var(--accent); border-color: var(--accent); }
.badge.type { color: #fff; border: none; background: var(--t-span); }
.type-GENERATION.badge { background: var(--t-generation); }
.type-EVENT.badge { background: var(--t-event); }
.type-AGENT.badge, .type-CHAIN.badge { background: var(--t-agent); }
.type-TOOL.badge { background: var(--t-tool); }
.type-RETRIEVER.badge, .type-EMBEDDING.badge { background: var(--t-retriever); }
.tags { list-style: none; margin: 0; padding: 0; display: inline; }
.tag { display: inline-block; margin: 0 4px 2px 0; padding: 0 6px; border-radius: 4px; background: var(--hover); font-size: 12px; }
.score { display: inline-block; margin-right: 6px; font-size: 12px; }

dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0 12px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.page-head + dl.facts { display: flex; flex-wrap: wrap; gap: 4px 24px; }
.page-head + dl.facts dt::after { content: ":"; }
.page-head + dl.facts dd { margin-right: 12px; }

.trace-layout { display: grid; grid-template-columns: minmax(0, 3fr) minmax(320px, 2fr); gap: 16px; align-items: start; }
@media (max-width: 1000px) { .trace-layout { grid-template-columns: 1fr; } }
.tree { position: relative; height: 240px; overflow: auto; border: 1px solid var(--line); border-radius: 8px; contain: strict; }
.tree-inner { position: relative; }
.row { position: absolute; left: 0; right: 0; height: 30px; display: grid; grid-template-columns: minmax(0, 1fr) 40%; align-items: center; gap: 8px; padding: 0 8px; cursor: pointer; border-bottom: 1px solid var(--line); }
.row:hover { background: var(--hover); }
.row.active { box-shadow: inset 0 0 0 1px var(--focus); }
.tree:focus-visible .row.active { box-shadow: inset 0 0 0 2px var(--focus); }
.row[aria-selected="true"] { background: var(--hover); font-weight: 600; }
.row.level-ERROR { background: var(--error-bg); }
.row-label { display: flex; align-items: center; gap: 6px; min-width: 0; white-space: nowrap; overflow: hidden; }
.indent { flex: none; }
.twisty { width: 14px; flex: none; text-align: center; color: var(--muted); }
.name { overflow: hidden; text-overflow: ellipsis; }
.status-msg { color: var(--error); font-size: 12px; overflow: hidden; text-overflow: ellipsis; }
.status-msg.level-WARNING { color: var(--warn); }
.row-bar { position: relative; height: 100%; }
.row-bar .bar { position: absolute; top: 9px; height: 12px; border-radius: 3px; background: var(--t-span); min-width: 2px; }
.type-GENERATION .row-bar .bar { background: var(--t-generation); }
.type-EVENT .row-bar .bar { background: var(--t-event); }
.type-AGENT .row-bar .bar, .type-CHAIN .row-bar .bar { background: var(--t-agent); }
.type-TOOL .row-bar .bar { background: var(--t-tool); }
.type-RETRIEVER .row-bar .bar { background: var(--t-retriever); }
.level-ERROR .row-bar .bar { background: var(--error); }
.row-bar .duration { position: absolute; right: 0; top: 6px; font-size: 11px; color: var(--muted); background: var(--bg); padding: 0 3px; border-radius: 3px; }

.detail-pane { border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px 14px; background: var(--panel); max-height: calc(65vh + 60px); overflow: auto; }
.status-box { padding: 8px 10px; border-radius: 6px; border: 1px solid var(--line); }
.status-box.level-ERROR { background: var(--error-bg); color: var(--error); border-color: var(--error); font-weight: 600; }
.status-box.level-WARNING { background: var(--warn-bg); color: var(--warn); border-color: var(--warn); }
table.kv { border-collapse: collapse; min-width: 60%; }
table.kv th, table.kv td { padding: 3px 10px 3px 0; border-bottom: 1px solid var(--line); text-align: left; font-weight: normal; }
.entries { display: flex; flex-direction: column; gap: 8px; }
.entry { border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; background: var(--bg); }
.entry-head { display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
.entry-time { margin-left: auto; font-size: 12px; }
.target.missing { color: var(--warn); }
.trace-panel { margin-top: 20px; border-top: 1px solid var(--line); padding-top: 8px; }
.warnings { border: 1px solid var(--warn); background: var(--warn-bg); border-radius: 6px; padding: 4px 12px; margin: 8px 0; }
.warnings h3 { margin-top: 6px; color: var(--warn); }

.json { font: 12px/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; overflow-x: auto; }
.json summary { cursor: pointer; }
/* A nested object or array opens on its key's line. */
.j-list > li > details { display: inline-block; vertical-align: top; }
.j-list { list-style: none; margin: 0; padding-left: 16px; border-left: 1px dotted var(--line); }
.j-key { color: var(--code); }
.j-index { color: var(--muted); }
.j-str { color: var(--str); white-space: pre-wrap; overflow-wrap: anywhere; }
.j-num { color: var(--num); }
.j-bool, .j-null { color: var(--accent); }
.j-punct { color: var(--muted); }

.session-traces { list-style: none; padding: 0; display: flex; flex-direction: column; gap: 12px; }
.session-trace { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.session-trace.level-row-ERROR { border-color: var(--error); }
.io { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
@media (max-width: 800px) { .io { grid-template-columns: 1fr; } }

.panel { margin: 8px 0 16px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(470px, 1fr)); gap: 12px 20px; margin-bottom: 16px; }
.chart-figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; background: var(--panel); }
.chart-figure figcaption { font-weight: 600; margin-bottom: 4px; }
.chart { max-width: 100%; height: auto; display: block; }
.chart.time { width: 100%; max-height: 220px; }
.chart .bar { fill: var(--accent); }
.chart .bar-error { fill: var(--error); }
.chart .axis { stroke: var(--line); }
.chart .axis-label, .chart .value-label { fill: var(--muted); font-size: 11px; }
.chart .value-label { fill: var(--fg); }
.empty { color: var(--muted); }
.error-text { color: var(--error); }
.loading { color: var(--muted); }

"""##,
        "trace.js": ##"""
// A trace: the waterfall of its observations (a virtualised tree, so a trace
// of thousands keeps a few dozen rows in the DOM), the selected
// observation, and the trace's own panel with its metadata by scope and
// kind. ?observation=<id> in the URL selects one.
import { h, link, fmt, levelBadge, typeBadge, tagList, dl, section } from './dom.js';
import { getJSON, seg } from './api.js';
import { setQuery } from './app.js';
import { jsonView } from './jsonview.js';

const ROW = 30;
const OVERSCAN = 8;
const GOVERNANCE = new Set(['tracefold.api_key', 'tracefold.workspace']);

const nanos = (o, field, iso) => (o[field] != null ? BigInt(o[field]) : BigInt(Date.parse(o[iso] || 0)) * 1000000n);

export async function tracePage(main, { id, query, isCurrent }) {
  document.title = 'Trace · tracefold';
  const [trace, grouped] = await Promise.all([
    getJSON(`/api/public/traces/${seg(id)}`),
    getJSON(`/api/traces/${seg(id)}/metadata`),
  ]);
  if (!isCurrent()) return;
  document.title = `${trace.name || trace.id} · Trace · tracefold`;
  const model = buildTree(trace.observations || [], grouped.metadata?.extended_trace || {});
  const tokens = (trace.observations || []).reduce((sum, o) => sum + (o.totalTokens || 0), 0);

  const detail = h('aside', { id: 'observation-detail', class: 'detail-pane', 'aria-label': 'Selected observation' });
  const waterfall = new Waterfall(model, (obs) => {
    renderObservation(detail, obs, model);
    setQuery({ observation: obs ? obs.id : '' });
  });

  main.append(
    h('div', { class: 'page-head' },
      h('div', null,
        h('p', { class: 'crumbs' }, link('/ui/', 'Traces'), ' / ', h('code', null, trace.id)),
        h('h1', null, trace.name || '(unnamed trace)', ' ', levelBadge(trace.level)))),
    dl([
      ['Started', fmt.time(trace.timestamp)], ['Latency', fmt.duration(trace.latency)],
      ['Observations', fmt.count(model.all.length, 'observation')], ['Tokens', fmt.tokens(tokens)], ['Cost', fmt.cost(trace.totalCost)],
    ], { class: 'facts' }),
    h('div', { class: 'trace-layout' },
      h('section', { class: 'waterfall-pane', 'aria-label': 'Observations' }, waterfall.toolbar(), waterfall.element), detail),
    tracePanel(trace, grouped, model));

  waterfall.mount();
  performance.mark('tracefold:waterfall');
  document.body.dataset.rendered = 'trace';
  const wanted = query.get('observation');
  const first = (wanted && model.byId.get(wanted)) || null;
  if (first) waterfall.select(first, { focus: false });
  else renderObservation(detail, null, model);
  return () => waterfall.destroy();
}

/** Observations as a tree, children by start time; a span whose parent never
 * arrived is a root, marked. `extended`: extended_trace entries by span. */
function buildTree(observations, extendedByKind) {
  const byId = new Map(observations.map((o) => [o.id, { o, id: o.id, children: [], depth: 0, parent: null, extended: [] }]));
  const roots = [];
  for (const n of byId.values()) {
    const parent = n.o.parentObservationId && byId.get(n.o.parentObservationId);
    if (parent) {
      parent.children.push(n);
      n.parent = parent;
    } else {
      n.orphan = Boolean(n.o.parentObservationId);
      roots.push(n);
    }
  }
  let start = null, end = null;
  for (const n of byId.values()) {
    n.start = nanos(n.o, 'startTimeUnixNano', 'startTime');
    n.end = n.o.endTime || n.o.endTimeUnixNano ? nanos(n.o, 'endTimeUnixNano', 'endTime') : n.start;
    if (start === null || n.start < start) start = n.start;
    if (end === null || n.end > end) end = n.end;
  }
  const order = (a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : (a.o.name || '').localeCompare(b.o.name || ''));
  const sortDeep = (list, depth) => {
    list.sort(order);
    for (const n of list) {
      n.depth = depth;
      sortDeep(n.children, depth + 1);
    }
  };
  sortDeep(roots, 1);
  const missing = [];
  for (const [kind, entries] of Object.entries(extendedByKind)) {
    for (const e of entries) {
      const target = byId.get(e.spanId);
      if (target) target.extended.push({ kind, ...e });
      else missing.push({ kind, ...e });
    }
  }
  const all = [];
  const walk = (list) => list.forEach((n) => { all.push(n); walk(n.children); });
  walk(roots);
  return { roots, byId, all, start: start ?? 0n, span: end !== null && start !== null && end > start ? end - start : 1n };
}

class Waterfall {
  constructor(model, onSelect) {
    this.model = model;
    this.onSelect = onSelect;
    this.collapsed = new Set();
    this.selected = null;
    this.active = model.all[0] || null;
    this.inner = h('div', { class: 'tree-inner' });
    this.element = h('div', {
      class: 'tree', role: 'tree', tabindex: 0, 'aria-label': 'Observation tree: arrow keys move, Enter selects',
    }, this.inner);
    this.rows = [];
    this.element.addEventListener('scroll', () => this.schedule());
    this.element.addEventListener('keydown', (e) => this.key(e));
    this.element.addEventListener('click', (e) => {
      const row = e.target.closest('[role=treeitem]');
      if (!row) return;
      const n = this.model.byId.get(row.dataset.id);
      if (e.target.closest('.twisty')) this.toggle(n);
      else this.select(n);
    });
    this.resize = () => this.schedule();
    window.addEventListener('resize', this.resize);
  }

  toolbar() {
    const count = h('span', { class: 'muted' }, fmt.count(this.model.all.length, 'observation'));
    return h('div', { class: 'toolbar' },
      h('button', { type: 'button', class: 'secondary', onclick: () => { this.collapsed.clear(); this.refresh(); } }, 'Expand all'),
      h('button', {
        type: 'button', class: 'secondary',
        onclick: () => { for (const n of this.model.all) if (n.children.length) this.collapsed.add(n.id); this.refresh(); },
      }, 'Collapse all'),
      count,
      h('span', { class: 'legend muted', 'aria-hidden': 'true' }, `0 – ${fmt.duration(Number(this.model.span) / 1e9)}`));
  }

  mount() {
    this.refresh();
  }

  destroy() {
    window.removeEventListener('resize', this.resize);
  }

  /** The rows a reader can reach: every node whose ancestors are open. */
  flatten() {
    const out = [];
    const walk = (list) => {
      for (const n of list) {
        out.push(n);
        if (!this.collapsed.has(n.id)) walk(n.children);
      }
    };
    walk(this.model.roots);
    this.rows = out;
    this.index = new Map(out.map((n, i) => [n.id, i]));
  }

  refresh() {
    this.flatten();
    this.inner.style.height = `${this.rows.length * ROW}px`;
    // As tall as its rows, up to about two thirds of the window.
    this.element.style.height = `${Math.min(this.rows.length * ROW + 2, Math.max(240, Math.min(720, Math.round(window.innerHeight * 0.65))))}px`;
    if (this.active && !this.index.has(this.active.id)) {
      let n = this.active;
      while (n && !this.index.has(n.id)) n = n.parent;
      this.active = n || this.rows[0] || null;
    }
    this.draw();
  }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      this.draw();
    });
  }

  /** Only the rows in view (and a few around them) exist. */
  draw() {
    const height = this.element.clientHeight || 480;
    const first = Math.max(0, Math.floor(this.element.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(this.rows.length, Math.ceil((this.element.scrollTop + height) / ROW) + OVERSCAN);
    const nodes = [];
    for (let i = first; i < last; i++) nodes.push(this.row(this.rows[i], i));
    this.inner.replaceChildren(...nodes);
    if (this.active) this.element.setAttribute('aria-activedescendant', `obs-${this.active.id}`);
  }

  row(n, i) {
    const o = n.o;
    const left = Number(((n.start - this.model.start) * 10000n) / this.model.span) / 100;
    const width = Math.max(Number(((n.end - n.start) * 10000n) / this.model.span) / 100, 0.3);
    const hasChildren = n.children.length > 0;
    const open = !this.collapsed.has(n.id);
    const duration = Number(n.end - n.start) / 1e9;
    const row = h('div', {
      role: 'treeitem', id: `obs-${n.id}`, class: `row type-${o.type} level-${o.level}${this.active === n ? ' active' : ''}`,
      'aria-level': n.depth, 'aria-selected': this.selected === n ? 'true' : 'false',
      'aria-expanded': hasChildren ? String(open) : null, 'aria-setsize': (n.parent ? n.parent.children : this.model.roots).length,
      'aria-posinset': (n.parent ? n.parent.children : this.model.roots).indexOf(n) + 1,
      'data-id': n.id,
    },
      h('div', { class: 'row-label' },
        h('span', { class: 'indent' }),
        hasChildren ? h('span', { class: 'twisty', 'aria-hidden': 'true' }, open ? '▾' : '▸') : h('span', { class: 'twisty leaf', 'aria-hidden': 'true' }),
        typeBadge(o.type),
        h('span', { class: 'name' }, o.name || o.id),
        n.orphan ? h('span', { class: 'badge warn', title: `parent ${o.parentObservationId} has not arrived` }, 'orphan') : null,
        n.extended.length ? h('span', { class: 'badge ext', title: 'extended_trace metadata targets this span' }, `◆ ${n.extended.length}`) : null,
        o.level === 'ERROR' || o.level === 'WARNING' ? h('span', { class: `status-msg level-${o.level}` }, o.statusMessage || o.level) : null),
      h('div', { class: 'row-bar' },
        h('span', { class: 'bar' }),
        h('span', { class: 'duration' }, fmt.duration(duration))));
    row.style.top = `${i * ROW}px`;
    row.querySelector('.indent').style.width = `${(n.depth - 1) * 14}px`;
    const bar = row.querySelector('.bar');
    bar.style.left = `${left}%`;
    bar.style.width = `${Math.min(width, 100 - left)}%`;
    return row;
  }

  select(n, { focus = true } = {}) {
    if (!n) return;
    // Open its ancestors, so the selection is in the tree.
    for (let p = n.parent; p; p = p.parent) this.collapsed.delete(p.id);
    this.selected = n;
    this.active = n;
    this.refresh();
    this.reveal(n);
    if (focus) this.element.focus({ preventScroll: true });
    this.onSelect(n);
  }

  toggle(n) {
    if (!n || !n.children.length) return;
    if (this.collapsed.has(n.id)) this.collapsed.delete(n.id);
    else this.collapsed.add(n.id);
    this.active = n;
    this.refresh();
  }

  reveal(n) {
    const i = this.index.get(n.id);
    if (i == null) return;
    const top = i * ROW, height = this.element.clientHeight || 480;
    if (top < this.element.scrollTop) this.element.scrollTop = top;
    else if (top + ROW > this.element.scrollTop + height) this.element.scrollTop = top + ROW - height;
    this.draw();
  }

  move(to) {
    const n = this.rows[Math.max(0, Math.min(this.rows.length - 1, to))];
    if (!n) return;
    this.active = n;
    this.reveal(n);
  }

  key(e) {
    const n = this.active;
    if (!n) return;
    const i = this.index.get(n.id) ?? 0;
    const open = !this.collapsed.has(n.id);
    switch (e.key) {
      case 'ArrowDown': this.move(i + 1); break;
      case 'ArrowUp': this.move(i - 1); break;
      case 'Home': this.move(0); break;
      case 'End': this.move(this.rows.length - 1); break;
      case 'PageDown': this.move(i + Math.floor((this.element.clientHeight || 480) / ROW)); break;
      case 'PageUp': this.move(i - Math.floor((this.element.clientHeight || 480) / ROW)); break;
      case 'ArrowRight':
        if (n.children.length && !open) this.toggle(n);
        else if (n.children.length) this.move(i + 1);
        break;
      case 'ArrowLeft':
        if (n.children.length && open) this.toggle(n);
        else if (n.parent) this.move(this.index.get(n.parent.id));
        break;
      case 'Enter': case ' ': this.select(n); break;
      default: return;
    }
    e.preventDefault();
  }
}

function renderObservation(pane, n, model) {
  if (!n) {
    pane.replaceChildren(h('h2', null, 'Observation'), h('p', { class: 'muted' }, 'Select an observation in the tree (click, or arrow keys and Enter).'));
    return;
  }
  const o = n.o;
  const ttft = o.completionStartTime ? (Date.parse(o.completionStartTime) - Date.parse(o.startTime)) / 1000 : null;
  const parts = [
    h('h2', null, typeBadge(o.type), ' ', o.name || o.id, ' ', levelBadge(o.level)),
    h('p', { class: 'muted' }, 'id ', h('code', null, o.id)),
  ];
  if (o.statusMessage) parts.push(h('p', { class: `status-box level-${o.level}`, role: o.level === 'ERROR' ? 'alert' : null }, o.statusMessage));
  parts.push(dl([
    ['Start', fmt.time(o.startTime)], ['End', fmt.time(o.endTime)], ['Duration', fmt.duration(Number(n.end - n.start) / 1e9)],
    ['Time to first token', ttft != null ? fmt.duration(ttft) : null], ['Model', o.model], ['Model definition', o.modelId],
    ['Environment', o.environment], ['Version', o.version],
    ['Parent', o.parentObservationId ? (model.byId.has(o.parentObservationId) ? model.byId.get(o.parentObservationId).o.name || o.parentObservationId : `${o.parentObservationId} (not arrived)`) : null],
  ], { class: 'facts', id: 'observation-facts' }));
  if (o.modelParameters && Object.keys(o.modelParameters).length) parts.push(h('h3', null, 'Model parameters'), kvTable('Model parameters', o.modelParameters, (v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))));
  if (o.usageDetails && Object.keys(o.usageDetails).length) parts.push(h('h3', null, 'Usage'), kvTable('Usage by type', o.usageDetails, fmt.tokens, 'usage'));
  if (o.costDetails && Object.keys(o.costDetails).length) parts.push(h('h3', null, 'Cost'), kvTable('Cost by usage type', o.costDetails, fmt.cost, 'cost'));
  parts.push(h('h3', null, 'Input'), jsonView(o.input, { label: 'Input' }), h('h3', null, 'Output'), jsonView(o.output, { label: 'Output' }));
  parts.push(h('h3', null, 'Metadata'), entriesByScope(o.metadataEntries || []));
  parts.push(h('details', null, h('summary', null, 'Merged metadata (Langfuse shape)'), jsonView(o.metadata, { label: 'Merged metadata', open: 1 })));
  pane.replaceChildren(...parts);
}

function kvTable(label, object, format, id) {
  return h('table', { class: 'kv', 'aria-label': label, 'data-kind': id },
    h('tbody', null, Object.entries(object).map(([k, v]) => h('tr', null, h('th', { scope: 'row' }, k), h('td', { class: 'num' }, typeof v === 'number' ? format(v) : String(v))))));
}

const SCOPE_NAMES = { trace: 'Trace', observation: 'Observation', extended_trace: 'Extended trace (targets this span)' };

/** Entries grouped by scope, then kind, each with its label and updatedAt. */
function entriesByScope(entries, { scopes = ['observation', 'extended_trace', 'trace'] } = {}) {
  if (!entries.length) return h('p', { class: 'muted' }, 'No metadata entries.');
  const out = h('div', { class: 'entries' });
  for (const scope of scopes) {
    const mine = entries.filter((e) => e.scope === scope).sort((a, b) => a.kind.localeCompare(b.kind));
    if (!mine.length) continue;
    out.append(h('h4', { class: `scope scope-${scope}` }, SCOPE_NAMES[scope] || scope), ...mine.map((e) => entryCard(e)));
  }
  return out;
}

function entryCard(e, extra) {
  return h('div', { class: 'entry', 'data-kind': e.kind, 'data-scope': e.scope },
    h('div', { class: 'entry-head' }, h('strong', { class: 'entry-label' }, e.label || e.kind), ' ', h('code', { class: 'muted' }, e.kind),
      h('span', { class: 'muted entry-time' }, e.updatedAt ? `updated ${fmt.time(e.updatedAt)}` : 'computed')),
    extra || null,
    jsonView(e.values, { label: `${e.label || e.kind} values`, open: 1 }));
}

function tracePanel(trace, grouped, model) {
  const entries = trace.metadataEntries || [];
  const warnings = entries.filter((e) => e.kind === 'tracefold.warnings');
  const layers = entries.filter((e) => GOVERNANCE.has(e.kind));
  const plain = entries.filter((e) => e.scope === 'trace' && e.kind !== 'tracefold.warnings' && !GOVERNANCE.has(e.kind));
  const extended = Object.entries(grouped.metadata?.extended_trace || {}).flatMap(([kind, list]) => list.map((e) => ({ kind, scope: 'extended_trace', ...e })));
  const panel = section('Trace', { id: 'trace-panel', class: 'trace-panel' },
    dl([
      ['Trace id', h('code', null, trace.id)], ['User', trace.userId],
      ['Session', trace.sessionId ? link(`/ui/sessions/${seg(trace.sessionId)}`, trace.sessionId) : null],
      ['Tags', tagList(trace.tags)],
      ['Release', trace.release], ['Version', trace.version], ['Environment', trace.environment], ['Public', trace.public ? 'yes' : 'no'],
    ], { class: 'facts', id: 'trace-facts' }));
  if (warnings.length) {
    panel.append(h('div', { class: 'warnings', role: 'note', 'aria-label': 'Warnings' }, h('h3', null, '⚠ Warnings (tracefold.warnings)'),
      h('ul', null, warnings.flatMap((w) => Object.entries(w.values || {}).map(([k, v]) => h('li', null, h('code', null, k), ': ', typeof v === 'string' ? v : JSON.stringify(v)))))));
  }
  if (layers.length) panel.append(h('h3', null, 'Governance layers'), h('div', { class: 'entries' }, layers.map((e) => entryCard(e))));
  panel.append(h('h3', null, 'Trace metadata'), plain.length ? h('div', { class: 'entries' }, plain.map((e) => entryCard(e))) : h('p', { class: 'muted' }, 'None.'));
  panel.append(h('h3', null, 'Extended trace metadata'));
  if (!extended.length) panel.append(h('p', { class: 'muted' }, 'None.'));
  else {
    panel.append(h('div', { class: 'entries', id: 'extended-entries' }, extended.map((e) => {
      const target = model.byId.get(e.spanId);
      const to = target
        ? h('p', { class: 'target' }, 'on ', link(`/ui/traces/${seg(trace.id)}?observation=${seg(e.spanId)}`, target.o.name || e.spanId), ' ', h('code', { class: 'muted' }, e.spanId))
        : h('p', { class: 'target missing' }, 'on span ', h('code', null, e.spanId), ', which has not arrived');
      return entryCard(e, to);
    })));
  }
  if ((trace.scores || []).length) {
    panel.append(h('h3', null, 'Scores'), h('table', { class: 'data', 'aria-label': 'Scores' },
      h('thead', null, h('tr', null, ['Name', 'Value', 'On', 'Comment'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, trace.scores.map((s) => h('tr', null, h('td', null, s.name), h('td', { class: 'num' }, String(s.stringValue ?? s.value)),
        h('td', null, s.observationId ? (model.byId.get(s.observationId)?.o.name || s.observationId) : 'trace'), h('td', null, s.comment || ''))))));
  }
  panel.append(h('h3', null, 'Input'), jsonView(trace.input, { label: 'Trace input' }), h('h3', null, 'Output'), jsonView(trace.output, { label: 'Trace output' }));
  return panel;
}

"""##,
        "traces.js": ##"""
// Traces: a filterable, paged table. The URL's query is the filter
// (name, userId, sessionId, tags, environment, level, from, to, metaKey,
// metaValue, page, live), so a link reproduces the view.
import { h, link, fmt, levelBadge, tagList, fromLocalInput, toLocalInput } from './dom.js';
import { getJSON, seg } from './api.js';
import { navigate, setQuery, showStatus } from './app.js';

const FIELDS = ['name', 'userId', 'sessionId', 'tags', 'environment', 'level', 'from', 'to', 'metaKey', 'metaValue'];
const LIMIT = 50;

/** The traces list's API parameters for the page's state. */
export function traceParams(state) {
  const list = (s) => (s || '').split(',').map((x) => x.trim()).filter(Boolean);
  const params = {
    page: state.page || 1, limit: LIMIT, name: state.name, userId: state.userId, sessionId: state.sessionId,
    tags: list(state.tags), environment: list(state.environment), level: state.level,
    fromTimestamp: state.from, toTimestamp: state.to,
  };
  if (state.metaKey) {
    params.filter = JSON.stringify([{ type: 'stringObject', column: 'metadata', key: state.metaKey, operator: '=', value: state.metaValue || '' }]);
  }
  return params;
}

function field(name, label, input) {
  return h('label', { class: 'field' }, h('span', null, label), input);
}

export async function tracesPage(main, { query, isCurrent }) {
  document.title = 'Traces · tracefold';
  const state = Object.fromEntries(FIELDS.map((f) => [f, query.get(f) || '']));
  state.page = Math.max(1, parseInt(query.get('page') || '1', 10) || 1);
  state.live = query.get('live') === '1';

  const input = (name, label, attrs = {}) => h('input', { name, value: state[name], 'aria-label': label, ...attrs });
  const level = h('select', { name: 'level', 'aria-label': 'Level' },
    ['', 'ERROR', 'WARNING', 'DEFAULT', 'DEBUG'].map((l) => h('option', { value: l, selected: l === state.level }, l || 'any')));
  const from = input('from', 'From (UTC)', { type: 'datetime-local', step: 1, value: toLocalInput(state.from) });
  const to = input('to', 'To (UTC)', { type: 'datetime-local', step: 1, value: toLocalInput(state.to) });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter traces' },
    field('name', 'Name', input('name', 'Name')),
    field('userId', 'User', input('userId', 'User id')),
    field('sessionId', 'Session', input('sessionId', 'Session id')),
    field('tags', 'Tags (all of)', input('tags', 'Tags, comma-separated', { placeholder: 'a,b' })),
    field('environment', 'Environment', input('environment', 'Environments, comma-separated')),
    field('level', 'Level', level),
    field('from', 'From (UTC)', from),
    field('to', 'To (UTC)', to),
    field('metaKey', 'Metadata key', input('metaKey', 'Metadata key')),
    field('metaValue', '= value', input('metaValue', 'Metadata value')),
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit' }, 'Apply'),
      h('button', { type: 'button', class: 'secondary', onclick: () => navigate('/ui/') }, 'Clear')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = {};
    for (const f of FIELDS) next[f] = (data.get(f) || '').toString().trim();
    next.from = fromLocalInput(next.from);
    next.to = fromLocalInput(next.to);
    if (state.live) next.live = '1';
    navigate(`/ui/?${new URLSearchParams(Object.entries(next).filter(([, v]) => v))}`);
  });

  const liveBox = h('input', { type: 'checkbox', id: 'live', checked: state.live });
  const refresh = h('button', { type: 'button', id: 'refresh', class: 'secondary' }, 'Refresh');
  const summary = h('p', { class: 'muted', id: 'traces-summary', 'aria-live': 'polite' });
  const table = h('table', { id: 'traces', class: 'data' },
    h('caption', { class: 'visually-hidden' }, 'Traces, newest first'),
    h('thead', null, h('tr', null, ['Timestamp', 'Name', 'User', 'Session', 'Tags', 'Environment', 'Latency', 'Tokens', 'Cost', 'Level', 'Scores']
      .map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody'));
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages of traces' });
  main.append(
    h('div', { class: 'page-head' }, h('h1', null, 'Traces'),
      h('div', { class: 'toolbar' }, refresh, h('label', { class: 'check' }, liveBox, ' Live (every 1 s)'))),
    form, summary, h('div', { class: 'table-wrap' }, table), pager);

  let timer = null;
  let inFlight = false;
  async function load() {
    if (inFlight) return;
    inFlight = true;
    try {
      const body = await getJSON('/api/public/traces', traceParams(state));
      if (!isCurrent()) return;
      showStatus('');
      renderRows(table.tBodies[0], body.data);
      const { totalItems, totalPages } = body.meta;
      summary.textContent = `${fmt.count(totalItems, 'trace')}${totalPages > 1 ? `, page ${state.page} of ${totalPages}` : ''}`;
      renderPager(pager, state, totalPages);
    } catch (error) {
      if (isCurrent()) showStatus(`Could not load traces: ${error.message}`);
    } finally {
      inFlight = false;
    }
  }
  const setLive = (on) => {
    state.live = on;
    clearInterval(timer);
    timer = on ? setInterval(load, 1000) : null;
    setQuery({ ...Object.fromEntries(FIELDS.map((f) => [f, state[f]])), page: state.page > 1 ? state.page : '', live: on ? '1' : '' });
  };
  liveBox.addEventListener('change', () => setLive(liveBox.checked));
  refresh.addEventListener('click', load);
  await load();
  if (state.live) setLive(true);
  return () => clearInterval(timer);
}

function renderRows(tbody, traces) {
  if (!traces.length) {
    tbody.replaceChildren(h('tr', null, h('td', { colspan: 11, class: 'empty' }, 'No traces match.')));
    return;
  }
  tbody.replaceChildren(...traces.map((t) => h('tr', { class: `level-row-${t.level}`, 'data-trace-id': t.id },
    h('td', { class: 'nowrap' }, fmt.time(t.timestamp)),
    h('td', null, link(`/ui/traces/${seg(t.id)}`, t.name || t.id)),
    h('td', null, t.userId || '—'),
    h('td', null, t.sessionId ? link(`/ui/sessions/${seg(t.sessionId)}`, t.sessionId) : '—'),
    h('td', null, tagList(t.tags)),
    h('td', null, t.environment),
    h('td', { class: 'num' }, fmt.duration(t.latency)),
    h('td', { class: 'num' }, fmt.tokens(t.totalTokens ?? 0)),
    h('td', { class: 'num' }, fmt.cost(t.totalCost)),
    h('td', { class: 'nowrap' }, levelBadge(t.level), t.errorCount ? h('span', { class: 'muted' }, ` ${fmt.count(t.errorCount, 'error')}`) : null),
    h('td', null, Object.entries(t.scoreValues || {}).map(([k, v]) => h('span', { class: 'score' }, `${k}: ${typeof v === 'number' ? v : String(v)}`))),
  )));
}

function renderPager(pager, state, totalPages) {
  const at = (page) => {
    const q = new URLSearchParams(location.search);
    if (page > 1) q.set('page', page);
    else q.delete('page');
    return `/ui/?${q}`;
  };
  pager.replaceChildren(
    state.page > 1 ? link(at(state.page - 1), '← Newer') : h('span', { class: 'muted' }, '← Newer'),
    h('span', null, `Page ${state.page} of ${Math.max(totalPages, 1)}`),
    state.page < totalPages ? link(at(state.page + 1), 'Older →') : h('span', { class: 'muted' }, 'Older →'));
}

"""##,
    ]
}
