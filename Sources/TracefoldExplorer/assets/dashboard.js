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
