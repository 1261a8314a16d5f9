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
