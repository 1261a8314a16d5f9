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
