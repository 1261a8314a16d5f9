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
