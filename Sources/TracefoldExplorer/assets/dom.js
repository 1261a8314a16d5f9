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
