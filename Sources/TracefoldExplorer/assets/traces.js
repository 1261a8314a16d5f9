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
