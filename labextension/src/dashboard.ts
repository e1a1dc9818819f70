import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { Message } from '@lumino/messaging';
import { TabPanel } from '@lumino/widgets';

import { api, apiPath } from './api';
import { el, fmt, message, status, when } from './dom';
import { MonitorTab } from './monitor';
import { ModelTab, Tab, chart, keysOf, table } from './panels';

const COLUMNS_KEY = 'mlops-nb:dashboard-columns';
const MEDIA = ['figure', 'table', 'image', 'text', 'dict'];
const PICTURE = /\.(png|jpe?g|gif|svg|webp|bmp)$/i;
const SVG = 'http://www.w3.org/2000/svg';

/** The URL of a run's artifact (an <img>, an <iframe> or a fetch reads it), in the registry shown. */
function artifactUrl(runId: string, name: string, view?: string): string {
  const base = URLExt.join(ServerConnection.makeSettings().baseUrl, 'mlops-nb', 'api');
  const path = `runs/${encodeURIComponent(runId)}/artifacts/${name.split('/').map(encodeURIComponent).join('/')}`;
  return URLExt.join(base, apiPath(view ? `${path}?view=${view}` : path));
}

async function artifactText(runId: string, name: string): Promise<string> {
  const settings = ServerConnection.makeSettings();
  const response = await ServerConnection.makeRequest(artifactUrl(runId, name), {}, settings);
  const text = await response.text();
  if (!response.ok) {
    throw new Error(text);
  }
  return text;
}

/** The columns the user chose (kept in this browser), else the ones worth showing. */
function chosenColumns(runs: any[]): string[] {
  const kept = window.localStorage.getItem(COLUMNS_KEY);
  if (kept) {
    try {
      return JSON.parse(kept);
    } catch {
      window.localStorage.removeItem(COLUMNS_KEY);
    }
  }
  return [...keysOf(runs, 'metrics', 3).map(k => `metrics.${k}`), ...keysOf(runs, 'params', 2).map(k => `params.${k}`)];
}

function valueOf(run: any, column: string): unknown {
  const [part, ...rest] = column.split('.');
  return (run[part] || {})[rest.join('.')];
}

/** Runs, grouped: by experiment, each pipeline run over its step runs (and a search over its trials), expandable;
 * columns the user picks; a run's details, charts, figures and tables beside the list. */
export class RunsBoard extends Tab {
  private filter = el('input', { class: 'mlops-filter', placeholder: "metrics.accuracy > 0.9 and params.model = 'rf'" });
  private chooser = el('div', { class: 'mlops-columns' });
  private list = el('div', { class: 'mlops-dash-list' });
  private detail = el('div', { class: 'mlops-dash-detail' });
  private expanded = new Set<string>();
  private selected = new Set<string>();
  private shown: string | null = null;
  private runs: any[] = [];

  constructor() {
    super('Runs', 'mlops-dash-runs');
    const columns = el('button', { class: 'jp-mod-styled mlops-button' }, 'Columns');
    columns.onclick = () => this.chooser.classList.toggle('mlops-open');
    const compare = el('button', { class: 'jp-mod-styled mlops-button' }, 'Compare selected');
    compare.onclick = () => void this.compare();
    this.filter.onkeydown = (event: KeyboardEvent) => {
      if (event.key === 'Enter') {
        void this.refresh();
      }
    };
    this.node.insertBefore(el('div', { class: 'mlops-toolbar' }, this.filter, columns, compare), this.notice);
    this.node.insertBefore(this.chooser, this.notice);
    this.body.classList.add('mlops-dash-split');
    this.body.append(this.list, this.detail);
  }

  async refresh(): Promise<void> {
    const query = new URLSearchParams({ order_by: 'start_time desc', max_results: '500' });
    if (this.filter.value.trim()) {
      query.set('filter', this.filter.value.trim());
    }
    let data: any;
    try {
      data = await api(`runs?${query.toString()}`);
    } catch (error) {
      this.showError(error);
      return;
    }
    this.clearError();
    this.runs = data.runs;
    if (!this.runs.length) {
      this.list.replaceChildren(message(data.message || 'No runs match. Log one with %%track or mlops.start_run().'));
      return;
    }
    this.renderList();
  }

  private renderList(): void {
    const columns = chosenColumns(this.runs);
    this.renderChooser(columns);
    const ids = new Set(this.runs.map(r => r.run_id));
    const children = new Map<string, any[]>();
    for (const run of this.runs) {
      if (run.parent_id && ids.has(run.parent_id)) {
        children.set(run.parent_id, [...(children.get(run.parent_id) || []), run]);
      }
    }
    const experiments = new Map<string, any[]>();
    for (const run of this.runs.filter(r => !(r.parent_id && ids.has(r.parent_id)))) {
      experiments.set(run.experiment, [...(experiments.get(run.experiment) || []), run]);
    }
    const rows: HTMLElement[] = [];
    const add = (run: any, depth: number): void => {
      const kids = (children.get(run.run_id) || []).slice().sort((a, b) => a.start_time - b.start_time);
      const open = this.expanded.has(run.run_id);
      const toggle = el('span', { class: 'mlops-toggle', title: kids.length ? `${kids.length} runs inside` : '' },
        kids.length ? (open ? '▾' : '▸') : '');
      toggle.onclick = () => {
        open ? this.expanded.delete(run.run_id) : this.expanded.add(run.run_id);
        this.renderList();
      };
      const box = el('input', { type: 'checkbox' }) as HTMLInputElement;
      box.checked = this.selected.has(run.run_id);
      box.onchange = () => (box.checked ? this.selected.add(run.run_id) : this.selected.delete(run.run_id));
      const name = el('span', { class: 'mlops-run-link', title: `run ${run.run_id}` }, run.name);
      name.onclick = () => void this.showRun(run.run_id);
      const kind = run.kind !== 'pipeline' ? run.kind : !kids.length && run.tags && run.tags.reused
        ? `pipeline, reused ${Object.keys(JSON.parse(run.tags.reused)).length} steps` : `pipeline, ${kids.length} steps`;
      rows.push(el('tr', { class: `mlops-depth-${depth}${this.shown === run.run_id ? ' mlops-shown' : ''}`, 'data-run': run.run_id },
        el('td', {}, box),
        el('td', { class: 'mlops-name', style: `padding-left:${4 + depth * 16}px` }, toggle, ' ', name),
        el('td', {}, kind),
        el('td', { title: `started ${when(run.start_time)}` }, status(run.status)),
        ...columns.map(c => el('td', { class: 'mlops-num' }, fmt(valueOf(run, c))))));
      if (open) {
        kids.forEach(kid => add(kid, depth + 1));
      }
    };
    for (const [experiment, runs] of experiments) {
      rows.push(el('tr', { class: 'mlops-group' }, el('td', { colspan: String(4 + columns.length) },
        `${experiment} · ${runs.length} run${runs.length === 1 ? '' : 's'}`)));
      runs.forEach(run => add(run, 0));
    }
    // A column says its key (metrics.accuracy) in full on hover; params in the params' colour.
    const headers = columns.map(c => el('span', { title: c, class: c.startsWith('params.') ? 'mlops-param' : '' },
      c.slice(c.indexOf('.') + 1)));
    this.list.replaceChildren(table(['', 'name', 'kind', 'status', ...headers], rows));
  }

  private renderChooser(columns: string[]): void {
    const keys = [...new Set(this.runs.flatMap(r => [
      ...Object.keys(r.metrics || {}).map(k => `metrics.${k}`), ...Object.keys(r.params || {}).map(k => `params.${k}`)]))].sort();
    this.chooser.replaceChildren(el('b', {}, 'Columns (kept in this browser): '), ...keys.map(key => {
      const box = el('input', { type: 'checkbox', 'data-column': key }) as HTMLInputElement;
      box.checked = columns.includes(key);
      box.onchange = () => {
        const next = box.checked ? [...columns, key] : columns.filter(c => c !== key);
        window.localStorage.setItem(COLUMNS_KEY, JSON.stringify(next));
        this.renderList();
      };
      return el('label', { class: 'mlops-column-choice' }, box, key);
    }));
  }

  /** One run: what it is, its params and metrics, a chart per metric logged over steps, and what it keeps to
   * be looked at. */
  async showRun(runId: string): Promise<void> {
    this.shown = runId;
    this.renderList();
    let run: any;
    try {
      run = await api(`runs/${encodeURIComponent(runId)}`);
    } catch (error) {
      this.detail.replaceChildren(message(error instanceof Error ? error.message : String(error), true));
      return;
    }
    const pairs = (title: string, values: { [k: string]: unknown }) => Object.keys(values).length
      ? table([title, ''], Object.entries(values).map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', { class: 'mlops-num' }, fmt(v)))))
      : null;
    const charts = Object.entries(run.metric_history || {})
      .filter(([, points]: any) => points.length > 1)
      .map(([key, points]: any) => chart(key, [{ label: run.name, points }]));
    const media = Object.entries(run.artifacts || {}).filter(([, a]: any) => MEDIA.includes(a.kind));
    const lineage = run.lineage || {};
    const inputs = (lineage.datasets || []).map((d: any) => `${d.role} ${d.name}`).join(', ');
    this.detail.replaceChildren(
      el('h3', { class: 'mlops-dash-title' }, run.name, ' ', status(run.status)),
      el('div', { class: 'mlops-note' }, `${run.kind} run ${run.run_id.slice(0, 8)} in ${run.experiment}, started ${when(run.start_time)}`
        + (inputs ? `; read ${inputs}` : '')),
      ...(run.error ? [message(run.error.split('\n')[0], true)] : []),
      ...[pairs('param', run.params), pairs('metric', run.metrics)].filter((x): x is HTMLTableElement => x !== null),
      ...charts,
      ...media.map(([name, a]) => this.preview(run.run_id, name, a))
    );
  }

  private preview(runId: string, name: string, artifact: any): HTMLElement {
    const box = el('figure', { class: 'mlops-media', 'data-kind': artifact.kind, 'data-name': name },
      el('figcaption', {}, el('b', {}, name), ` ${artifact.kind}, ${artifact.size.toLocaleString()} bytes`));
    if (PICTURE.test(name)) {
      box.append(el('img', { src: artifactUrl(runId, name), alt: name }));
    } else if (artifact.kind === 'figure' && name.endsWith('.json')) {
      box.append(el('iframe', { src: artifactUrl(runId, name, 'page'), sandbox: 'allow-scripts', class: 'mlops-plotly' }));
    } else if (artifact.kind === 'table') {
      void api(`runs/${encodeURIComponent(runId)}/artifacts/${name.split('/').map(encodeURIComponent).join('/')}?view=table`)
        .then((data: any) => box.append(
          el('div', { class: 'mlops-note' }, `${data.n_rows.toLocaleString()} rows x ${data.columns.length} columns` +
            (data.n_rows > data.rows.length ? `; the first ${data.rows.length}` : '')),
          table(data.columns.map((c: string, i: number) => el('span', { title: data.types[i] }, c)),
            data.rows.map((row: unknown[]) => el('tr', {}, ...row.map(v => el('td', { class: 'mlops-num' }, fmt(v))))))))
        .catch(error => box.append(message(String(error), true)));
    } else {
      void artifactText(runId, name)
        .then(text => box.append(el('pre', { class: 'mlops-text' }, text.length > 8000 ? text.slice(0, 8000) + '…' : text)))
        .catch(error => box.append(message(String(error), true)));
    }
    return box;
  }

  /** The selected runs side by side: each metric across them, and over steps where they logged several. */
  private async compare(): Promise<void> {
    if (this.selected.size < 2) {
      this.detail.replaceChildren(message('Select two or more runs to compare.', true));
      return;
    }
    const runs: any[] = await Promise.all([...this.selected].map(id => api(`runs/${encodeURIComponent(id)}`)));
    const keys = [...new Set(runs.flatMap(r => Object.keys(r.metrics)))].sort();
    const across = keys.map(key => chart(`${key} across runs`, [{
      label: runs.map((r, i) => `${i + 1}: ${r.name}`).join(', '),
      points: runs.map((r, i) => ({ step: i + 1, value: r.metrics[key] })).filter(p => p.value !== undefined)
    }]));
    const over = keys.filter(key => runs.some(r => (r.metric_history[key] || []).length > 1))
      .map(key => chart(`${key} over steps`, runs.map(r => ({ label: r.name, points: r.metric_history[key] || [] }))));
    this.shown = null;
    this.detail.replaceChildren(el('h3', { class: 'mlops-dash-title' }, `${runs.length} runs compared`), ...across, ...over);
  }
}

/** Model versions with their metrics, gate and aliases, and their lineage as a graph: the datasets a version's
 * run read, the run, the version, the aliases on it; under it, each alias's history. */
export class ModelsBoard extends ModelTab {
  constructor() {
    super('Models', 'mlops-dash-models');
  }

  async refresh(): Promise<void> {
    const choose = await this.pickModel('No registered models yet: mlops.register_model(run, name) makes one.');
    if (!choose) {
      return;
    }
    const model: any = await api(`models/${encodeURIComponent(this.chosen as string)}`);
    const metricKeys = keysOf(model.versions, 'metrics', 5);
    const rows = [...model.versions].reverse().map((v: any) => el('tr', {},
      el('td', { class: 'mlops-num' }, String(v.version)),
      el('td', {}, v.run_name),
      el('td', { class: 'mlops-alias' }, v.aliases.join(', ')),
      el('td', {}, v.gate ? status(v.gate.passed ? 'passed' : v.gate.override_reason ? 'overridden' : 'failed') : ''),
      el('td', { class: 'mlops-fairness' }, fairness(v.gate)),
      ...metricKeys.map(k => el('td', { class: 'mlops-num' }, fmt(v.metrics[k])))));
    this.body.replaceChildren(
      el('div', { class: 'mlops-toolbar' }, choose),
      table(['version', 'run', 'aliases', 'gate', 'fairness', ...metricKeys], rows),
      el('h3', { class: 'mlops-dash-title' }, 'Lineage'),
      lineageGraph(model),
      aliasHistory(model.alias_history)
    );
  }
}

/** The gate's fairness figures for a version: demographic parity and equalized odds differences, across its
 * sensitive column (blank when the gate measured none). */
function fairness(gate: any): string {
  const f = gate && gate.fairness;
  if (!f) {
    return '';
  }
  return `${f.column}: DP diff ${fmt(f.demographic_parity_difference)}, EO diff ${fmt(f.equalized_odds_difference)}`;
}

function node(root: SVGElement, x: number, y: number, text: string, kind: string, title: string): void {
  const g = document.createElementNS(SVG, 'g');
  g.setAttribute('class', `mlops-node mlops-node-${kind}`);
  const rect = document.createElementNS(SVG, 'rect');
  for (const [k, v] of Object.entries({ x: x, y: y - 11, width: 150, height: 22, rx: 4 })) {
    rect.setAttribute(k, String(v));
  }
  const label = document.createElementNS(SVG, 'text');
  label.setAttribute('x', String(x + 6));
  label.setAttribute('y', String(y + 4));
  label.textContent = text.length > 22 ? text.slice(0, 21) + '…' : text;
  const tip = document.createElementNS(SVG, 'title');
  tip.textContent = title;
  g.append(rect, label, tip);
  root.append(g);
}

function edge(root: SVGElement, x0: number, y0: number, x1: number, y1: number): void {
  const path = document.createElementNS(SVG, 'path');
  const mid = (x0 + x1) / 2;
  path.setAttribute('d', `M${x0},${y0} C${mid},${y0} ${mid},${y1} ${x1},${y1}`);
  path.setAttribute('class', 'mlops-edge');
  root.prepend(path);
}

/** dataset -> run -> version -> alias, one row per version (newest on top), datasets shared between versions
 * drawn once. */
function lineageGraph(model: any): SVGElement {
  const versions = [...model.versions].reverse();
  const columns = [10, 200, 390, 580];
  const rowHeight = 34;
  const datasets = new Map<string, { name: string; rows: number[] }>();
  versions.forEach((v: any, i: number) => {
    for (const d of v.datasets || []) {
      const entry = datasets.get(d.fingerprint) || { name: d.name, rows: [] as number[] };
      entry.rows.push(i);
      datasets.set(d.fingerprint, entry);
    }
  });
  const datasetRows = [...datasets.entries()];
  const height = Math.max(versions.length, datasetRows.length) * rowHeight + 20;
  const root = document.createElementNS(SVG, 'svg') as SVGElement;
  root.setAttribute('class', 'mlops-lineage');
  root.setAttribute('width', '740');
  root.setAttribute('height', String(height));
  const y = (row: number) => 20 + row * rowHeight;
  datasetRows.forEach(([fingerprint, d], k) => {
    node(root, columns[0], y(k), d.name, 'dataset', `dataset ${d.name} (${fingerprint.slice(0, 12)})`);
    d.rows.forEach(row => edge(root, columns[0] + 150, y(k), columns[1], y(row)));
  });
  versions.forEach((v: any, i: number) => {
    node(root, columns[1], y(i), `run ${v.run_name}`, 'run', `run ${v.run_id}`);
    node(root, columns[2], y(i), `${model.name}/${v.version}`, 'version', `version ${v.version}, sha256 ${v.sha256.slice(0, 12)}`);
    edge(root, columns[1] + 150, y(i), columns[2], y(i));
    if (v.aliases.length) {
      node(root, columns[3], y(i), `@${v.aliases.join(', @')}`, 'alias', `aliases on version ${v.version}`);
      edge(root, columns[2] + 150, y(i), columns[3], y(i));
    }
  });
  return root;
}

function aliasHistory(history: any[]): HTMLElement {
  const byAlias = new Map<string, any[]>();
  for (const h of history) {
    byAlias.set(h.alias, [...(byAlias.get(h.alias) || []), h]);
  }
  return el('div', { class: 'mlops-alias-history' }, ...[...byAlias.entries()].map(([alias, moves]) =>
    el('div', {}, el('b', {}, `@${alias}: `), moves.map(m => `v${m.version}${m.action !== 'set' ? ` (${m.action})` : ''}`).join(' → '),
      el('span', { class: 'mlops-note' }, `  last moved ${when(moves[moves.length - 1].at)}`))));
}

/** The dashboard: a main-area tab (like jupyter-scheduler's job list) with the runs, the models and the
 * monitoring views at full width. The sidebar stays the compact navigator. */
export class Dashboard extends TabPanel {
  readonly boards: Tab[];

  constructor() {
    super({ tabPlacement: 'top' });
    this.id = 'mlops-nb-dashboard';
    this.addClass('mlops-dashboard');
    this.title.label = 'mlops-nb';
    this.title.caption = 'mlops-nb dashboard: runs, models and monitoring';
    this.title.closable = true;
    const monitor = new MonitorTab();
    monitor.id = 'mlops-dash-monitor';
    this.boards = [new RunsBoard(), new ModelsBoard(), monitor];
    this.boards.forEach(board => this.addWidget(board));
    this.currentChanged.connect(() => void this.current().refresh());
  }

  current(): Tab {
    return (this.currentWidget as Tab) || this.boards[0];
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.current().refresh();
  }
}
