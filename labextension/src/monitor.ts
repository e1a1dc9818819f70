import { api } from './api';
import { el, fmt, message } from './dom';
import { ModelTab } from './panels';

const SVG = 'http://www.w3.org/2000/svg';
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728'];

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: { [key: string]: string | number }): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    node.setAttribute(key, String(value));
  }
  return node;
}

function clock(seconds: number): string {
  return new Date(seconds * 1000).toLocaleTimeString();
}

/** A small line chart: one line per series of (time, value) points, a dashed line with a tooltip per marker. */
function chart(title: string, series: { [label: string]: [number, number][] }, markers: any[]): HTMLElement {
  const width = 260;
  const height = 96;
  const [left, right, top, bottom] = [34, 6, 16, 16];
  const points = Object.values(series).flat().filter(p => p[1] !== null && Number.isFinite(p[1]));
  const box = el('div', { class: 'mlops-chart' });
  if (!points.length) {
    box.append(el('div', { class: 'mlops-chart-title' }, `${title}: no values yet`));
    return box;
  }
  let [x0, x1] = [Math.min(...points.map(p => p[0])), Math.max(...points.map(p => p[0]))];
  let [y0, y1] = [Math.min(...points.map(p => p[1])), Math.max(...points.map(p => p[1]))];
  if (x1 === x0) {
    x1 = x0 + 1;
  }
  y0 = Math.min(0, y0); // counts, latencies, shares and scores read best from zero
  if (y1 === y0) {
    y1 = y0 + 1;
  }
  const sx = (x: number) => left + ((x - x0) / (x1 - x0)) * (width - left - right);
  const sy = (y: number) => top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom);
  const root = svg('svg', { width, height, class: 'mlops-chart-svg' });
  root.append(svg('rect', { x: left, y: top, width: width - left - right, height: height - top - bottom, fill: 'none', stroke: '#ccc' }));
  for (const [text, y] of [[fmt(Number(y1.toPrecision(3))), top + 4], [fmt(Number(y0.toPrecision(3))), height - bottom]] as [string, number][]) {
    const label = svg('text', { x: 2, y, 'font-size': 9 });
    label.textContent = text;
    root.append(label);
  }
  const span = svg('text', { x: left, y: height - 3, 'font-size': 9 });
  span.textContent = `${clock(x0)} – ${clock(x1)}`;
  root.append(span);
  Object.entries(series).forEach(([, pts], i) => {
    const coords = pts.filter(p => p[1] !== null && Number.isFinite(p[1])).map(p => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`);
    root.append(svg('polyline', { points: coords.join(' '), fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 1.5 }));
    if (coords.length === 1) {
      const [cx, cy] = coords[0].split(',');
      root.append(svg('circle', { cx, cy, r: 2, fill: COLORS[i % COLORS.length] }));
    }
  });
  for (const mark of markers) {
    if (mark.time < x0 || mark.time > x1) {
      continue;
    }
    const line = svg('line', {
      x1: sx(mark.time), x2: sx(mark.time), y1: top, y2: height - bottom,
      stroke: mark.kind === 'alias' ? '#2e7d32' : '#c62828', 'stroke-dasharray': '3,3', class: `mlops-marker mlops-marker-${mark.kind}`
    });
    const tip = svg('title', {});
    tip.textContent = `${clock(mark.time)} ${mark.kind}: ${mark.text}`;
    line.append(tip);
    root.append(line);
  }
  const legend = el('div', { class: 'mlops-chart-legend' },
    ...Object.keys(series).map((label, i) => el('span', { style: `color:${COLORS[i % COLORS.length]}` }, `■ ${label} `)));
  box.append(el('div', { class: 'mlops-chart-title' }, title), root, legend);
  return box;
}

/** Monitoring: a served model's prediction log per window (traffic, latency, drift, live metric), with
 * markers where the alias moved (green) and a trigger fired (red). */
export class MonitorTab extends ModelTab {
  private window = el('input', { class: 'mlops-window', value: '1h', title: 'a duration (30m, 1h, 1d) or a number of predictions (500)' }) as HTMLInputElement;

  constructor() {
    super('Monitor', 'mlops-monitor');
    this.window.onkeydown = (event: KeyboardEvent) => {
      if (event.key === 'Enter') {
        void this.refresh();
      }
    };
  }

  async refresh(): Promise<void> {
    const choose = await this.pickModel('No registered models yet: serve one with mlops-nb serve NAME.');
    if (!choose) {
      return;
    }
    const toolbar = el('div', { class: 'mlops-toolbar' }, choose, el('label', {}, ' window ', this.window));
    let data: any;
    try {
      data = await api(`models/${encodeURIComponent(this.chosen as string)}/monitor?window=${encodeURIComponent(this.window.value.trim() || '1h')}`);
    } catch (error) {
      this.body.replaceChildren(toolbar, message(error instanceof Error ? error.message : String(error)));
      return;
    }
    const w: any[] = data.windows;
    const at = (key: string): [number, number][] => w.map(r => [r.start, r[key]] as [number, number]);
    const serving = data.serving === null ? `nothing at ${data.alias}` : `version ${data.serving} serving`;
    const share = data.total ? ` (${Math.round((100 * data.labelled) / data.total)}%)` : '';
    const summary = `${data.model}@${data.alias}: ${serving}; ${data.total} predictions, ${data.labelled} labelled${share}; windows of ${data.window}`;
    const marks = el('ul', { class: 'mlops-markers' },
      ...data.markers.map((m: any) => el('li', {}, `${clock(m.time)} ${m.kind}: ${m.text}`)));
    this.body.replaceChildren(
      toolbar,
      el('div', { class: 'mlops-note' }, summary),
      chart('traffic (predictions)', { predictions: at('n') }, data.markers),
      chart('latency (ms)', { p50: at('p50_ms'), p99: at('p99_ms') }, data.markers),
      chart('share of inputs drifted', { drift: at('drift_share') }, data.markers),
      chart(`live ${data.metric}`, { [data.metric]: at('metric'), 'label coverage': at('coverage') }, data.markers),
      marks,
      ...data.notes.map((n: string) => message(n))
    );
  }
}
