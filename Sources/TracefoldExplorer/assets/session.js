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
