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
