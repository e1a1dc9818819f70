import { showDialog, Dialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { api, post } from './api';
import { el, fmt, message, picker, status, when } from './dom';

/** A tab that renders itself from the API; refresh() is called when shown and while runs go on. */
export abstract class Tab extends Widget {
  protected body = el('div', { class: 'mlops-body' });
  protected notice = el('div');

  constructor(title: string, id: string) {
    super();
    this.id = id;
    this.title.label = title;
    this.addClass('mlops-tab');
    this.node.append(this.notice, this.body);
  }

  protected showError(error: unknown): void {
    this.notice.replaceChildren(message(error instanceof Error ? error.message : String(error), true));
  }

  protected clearError(): void {
    // A refresh clears an old error, not the message of an action that just succeeded.
    if (this.notice.querySelector('.mlops-error')) {
      this.notice.replaceChildren();
    }
  }

  abstract refresh(): Promise<void>;
}

/** A tab about one registered model at a time, chosen from a drop-down. */
export abstract class ModelTab extends Tab {
  protected chosen: string | null = null;

  /** The registered models' picker (the one chosen kept while it exists), or null after showing the error or
   * ``empty`` where there is none. */
  protected async pickModel(empty: string): Promise<HTMLSelectElement | null> {
    let data: any;
    try {
      data = await api('models');
    } catch (error) {
      this.showError(error);
      return null;
    }
    this.clearError();
    const names: string[] = data.models.map((m: any) => m.name);
    if (!names.length) {
      this.body.replaceChildren(message(data.message || empty));
      return null;
    }
    this.chosen = this.chosen && names.includes(this.chosen) ? this.chosen : names[0];
    return picker(names, this.chosen, name => {
      this.chosen = name;
      void this.refresh();
    });
  }
}

export function table(headers: (string | HTMLElement)[], rows: HTMLElement[]): HTMLTableElement {
  return el(
    'table',
    { class: 'mlops-table' },
    el('thead', {}, el('tr', {}, ...headers.map(h => el('th', {}, h)))),
    el('tbody', {}, ...rows)
  );
}

/** The keys worth a column: those whose value differs between rows first, then the most common; none that
 * has no value anywhere. */
export function keysOf(rows: any[], part: string, limit = 6): string[] {
  const counts = new Map<string, number>();
  const values = new Map<string, Set<string>>();
  for (const row of rows) {
    for (const [key, value] of Object.entries(row[part] || {})) {
      if (value !== null && value !== undefined && value !== '') {
        counts.set(key, (counts.get(key) || 0) + 1);
        values.set(key, (values.get(key) || new Set<string>()).add(JSON.stringify(value)));
      }
    }
  }
  const varies = (key: string): number => ((values.get(key)?.size || 0) > 1 ? 0 : 1);
  return [...counts.entries()]
    .sort((a, b) => varies(a[0]) - varies(b[0]) || b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, limit)
    .map(e => e[0]);
}

/** Runs: filter (the search grammar), sort by a column, select two or more to compare. */
export class RunsTab extends Tab {
  private filter = el('input', { class: 'mlops-filter', placeholder: "metrics.accuracy > 0.9 and params.model = 'rf'" });
  private orderBy = 'start_time desc';
  private selected = new Set<string>();
  private comparison = el('div', { class: 'mlops-compare' });

  constructor() {
    super('Runs', 'mlops-runs');
    const compare = el('button', { class: 'jp-mod-styled mlops-button' }, 'Compare selected');
    compare.onclick = () => void this.compare();
    this.filter.onkeydown = (event: KeyboardEvent) => {
      if (event.key === 'Enter') {
        void this.refresh();
      }
    };
    this.node.insertBefore(el('div', { class: 'mlops-toolbar' }, this.filter, compare), this.notice);
    this.node.append(this.comparison);
  }

  async refresh(): Promise<void> {
    const query = new URLSearchParams({ order_by: this.orderBy, max_results: '100' });
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
    const runs: any[] = data.runs;
    if (!runs.length) {
      this.body.replaceChildren(message(data.message || 'No runs match. Log one with %%track or mlops.start_run().'));
      return;
    }
    const metrics = keysOf(runs, 'metrics');
    const params = keysOf(runs, 'params', 4);
    const header = (label: string, field: string) => {
      const th = el('span', { class: 'mlops-sortable', title: `sort by ${field}` }, label);
      th.onclick = () => {
        this.orderBy = this.orderBy === `${field} desc` ? `${field} asc` : `${field} desc`;
        void this.refresh();
      };
      return th;
    };
    const rows = runs.map(run => {
      const box = el('input', { type: 'checkbox' }) as HTMLInputElement;
      box.checked = this.selected.has(run.run_id);
      box.onchange = () => (box.checked ? this.selected.add(run.run_id) : this.selected.delete(run.run_id));
      return el(
        'tr',
        {},
        el('td', {}, box),
        el('td', { class: 'mlops-name' }, run.name),
        el('td', { title: `started ${when(run.start_time)}` }, status(run.status)),
        ...metrics.map(k => el('td', { class: 'mlops-num' }, fmt(run.metrics[k]))),
        ...params.map(k => el('td', { class: 'mlops-num mlops-param' }, fmt(run.params[k])))
      );
    });
    this.body.replaceChildren(
      table(
        [
          '',
          header('name', 'name'),
          header('status', 'status'),
          ...metrics.map(k => header(k, `metrics.${k}`)),
          ...params.map(k => header(k, `params.${k}`))
        ],
        rows
      )
    );
  }

  private async compare(): Promise<void> {
    if (this.selected.size < 2) {
      this.comparison.replaceChildren(message('Select two or more runs to compare.', true));
      return;
    }
    const runs: any[] = await Promise.all([...this.selected].map(id => api(`runs/${id}`)));
    const paramKeys = [...new Set(runs.flatMap(r => Object.keys(r.params)))].sort();
    const metricKeys = [...new Set(runs.flatMap(r => Object.keys(r.metrics)))].sort();
    const rows = [
      ...paramKeys.map(key => {
        const values = runs.map(r => fmt(r.params[key]));
        const differs = new Set(values).size > 1;
        return el('tr', { class: differs ? 'mlops-differs' : '' }, el('td', {}, `params.${key}`),
          ...values.map(v => el('td', { class: 'mlops-num' }, v)));
      }),
      ...metricKeys.map(key =>
        el('tr', {}, el('td', {}, `metrics.${key}`), ...runs.map(r => el('td', { class: 'mlops-num' }, fmt(r.metrics[key]))))
      )
    ];
    const charts = metricKeys
      .filter(key => runs.some(r => (r.metric_history[key] || []).length > 1))
      .map(key => chart(key, runs.map(r => ({ label: r.name, points: r.metric_history[key] || [] }))));
    this.comparison.replaceChildren(table(['', ...runs.map(r => r.name)], rows), ...charts);
  }
}

const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];

export function chart(title: string, series: { label: string; points: { step: number; value: number }[] }[]): HTMLElement {
  const width = 360;
  const height = 150;
  const all = series.flatMap(s => s.points).filter(p => Number.isFinite(p.value));
  const x0 = Math.min(...all.map(p => p.step));
  const x1 = Math.max(...all.map(p => p.step)) || x0 + 1;
  const y0 = Math.min(...all.map(p => p.value));
  const y1 = Math.max(...all.map(p => p.value)) || y0 + 1;
  const sx = (x: number) => 30 + ((x - x0) / (x1 - x0 || 1)) * (width - 40);
  const sy = (y: number) => 10 + (1 - (y - y0) / (y1 - y0 || 1)) * (height - 30);
  const lines = series
    .map((s, i) => {
      const points = s.points.filter(p => Number.isFinite(p.value)).map(p => `${sx(p.step)},${sy(p.value)}`).join(' ');
      return `<polyline fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="1.5" points="${points}"/>`;
    })
    .join('');
  const box = el('div', { class: 'mlops-chart' }, el('b', {}, title));
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.innerHTML = `<rect x="30" y="10" width="${width - 40}" height="${height - 30}" fill="none" stroke="#ccc"/>${lines}`;
  box.append(svg, el('div', {}, ...series.map((s, i) => el('span', { style: `color:${COLOURS[i % COLOURS.length]}` }, `■ ${s.label} `))));
  return box;
}

async function confirm(title: string, body: string): Promise<boolean> {
  const result = await showDialog({ title, body, buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Confirm' })] });
  return result.button.accept;
}

/** Models: versions with metrics, gate decision and aliases; promote and roll back with confirmation. */
export class ModelsTab extends ModelTab {
  constructor() {
    super('Models', 'mlops-models');
  }

  async refresh(): Promise<void> {
    const choose = await this.pickModel('No registered models yet: mlops.register_model(run, name) makes one.');
    if (!choose) {
      return;
    }
    const model: any = await api(`models/${encodeURIComponent(this.chosen as string)}`);
    const metricKeys = keysOf(model.versions, 'metrics', 4);
    const rows = [...model.versions].reverse().map((v: any) => {
      const promote = el('button', { class: 'jp-mod-styled mlops-button' }, 'Promote');
      promote.onclick = () => void this.promote(model.name, v.version);
      const gate = v.gate ? (v.gate.passed ? 'passed' : v.gate.override_reason ? 'overridden' : 'failed') : '';
      return el(
        'tr',
        {},
        el('td', { class: 'mlops-num' }, String(v.version)),
        el('td', { class: 'mlops-alias' }, v.aliases.join(', ')),
        el('td', {}, gate ? status(gate) : ''),
        ...metricKeys.map(k => el('td', { class: 'mlops-num', title: `created ${when(v.created_at)}` }, fmt(v.metrics[k]))),
        el('td', {}, promote)
      );
    });
    const rollback = el('button', { class: 'jp-mod-styled mlops-button' }, 'Roll back production');
    rollback.onclick = () => void this.rollback(model.name);
    this.body.replaceChildren(
      el('div', { class: 'mlops-toolbar' }, choose, rollback),
      table(['version', 'aliases', 'gate', ...metricKeys, ''], rows)
    );
  }

  private async promote(name: string, version: number): Promise<void> {
    if (!(await confirm('Promote model', `Point ${name}@production at version ${version}?`))) {
      return;
    }
    try {
      const result = await post(`models/${encodeURIComponent(name)}/aliases/production`, { version });
      this.notice.replaceChildren(message(`${name}@production -> version ${result.version}`));
    } catch (error) {
      this.showError(error);
    }
    await this.refresh().catch(() => undefined);
  }

  private async rollback(name: string): Promise<void> {
    if (!(await confirm('Roll back model', `Point ${name}@production back at the version it held before?`))) {
      return;
    }
    try {
      const result = await post(`models/${encodeURIComponent(name)}/aliases/production/rollback`, {});
      this.notice.replaceChildren(message(`${name}@production -> version ${result.version}`));
    } catch (error) {
      this.showError(error);
    }
    await this.refresh().catch(() => undefined);
  }
}

/** Pipelines: last runs with each step's state, a run button, links to executed notebooks. */
export class PipelinesTab extends Tab {
  constructor(private open: (runId: string, label: string, registry: string | null) => void) {
    super('Pipelines', 'mlops-pipelines');
  }

  async refresh(): Promise<void> {
    let data: any;
    try {
      data = await api('pipelines');
    } catch (error) {
      this.showError(error);
      return;
    }
    this.clearError();
    if (!data.pipelines.length) {
      this.body.replaceChildren(message('No pipeline.yaml under this folder.'));
      return;
    }
    this.body.replaceChildren(
      ...data.pipelines.map((p: any) => {
        if (p.error) {
          return el('div', { class: 'mlops-pipeline' }, el('b', {}, p.path), message(p.error, true));
        }
        const run = el('button', { class: 'jp-mod-styled mlops-button' }, 'Run');
        run.onclick = async () => {
          try {
            const started = await post(`pipelines/${encodeURIComponent(p.name)}/runs`, {});
            this.notice.replaceChildren(
              message(
                started.run_id
                  ? `${p.name}: run ${String(started.run_id).slice(0, 8)} started`
                  : `${p.name}: ${started.message}`
              )
            );
          } catch (error) {
            this.showError(error);
          }
          await this.refresh();
        };
        const runs = p.runs.map((r: any) =>
          el(
            'div',
            { class: 'mlops-pipeline-run' },
            el('span', {}, `${r.name} `),
            status(r.status),
            el('span', { class: 'mlops-note' }, ` ${when(r.start_time)} `),
            ...r.steps.map((s: any) => {
              const link = el('a', { class: `mlops-step mlops-step-${s.state}`, href: '#', title: 'open the executed notebook' }, `${s.step}: ${s.state}`);
              link.onclick = (event: MouseEvent) => {
                event.preventDefault();
                if (s.run_id) {
                  this.open(s.run_id, `${s.step} · ${p.name} run ${String(r.run_id).slice(0, 8)}`, p.registry || null);
                }
              };
              return link;
            })
          )
        );
        return el('div', { class: 'mlops-pipeline' }, el('div', { class: 'mlops-toolbar' }, el('b', {}, `${p.name} `), el('span', { class: 'mlops-note' }, p.path), run), ...runs);
      })
    );
  }
}

/** Triggers: each trigger's state, and the event history with its evidence. */
export class TriggersTab extends Tab {
  constructor() {
    super('Triggers', 'mlops-triggers');
  }

  async refresh(): Promise<void> {
    let triggers: any;
    let events: any;
    try {
      [triggers, events] = await Promise.all([api('triggers'), api('triggers/events?max_results=30')]);
    } catch (error) {
      this.showError(error);
      return;
    }
    this.clearError();
    const rows = triggers.triggers.map((t: any) =>
      el('tr', {}, el('td', {}, `${t.pipeline} ${t.trigger || ''}`), el('td', {}, t.description || ''),
        el('td', {}, t.error ? message(t.error, true) : t.state || ''), el('td', {}, t.last_fired ? when(t.last_fired) : 'never'))
    );
    const history = events.events.map((e: any) =>
      el('tr', {}, el('td', {}, when(e.fired_at)), el('td', {}, `${e.pipeline} ${e.trigger}`), el('td', {}, status(e.status)),
        el('td', { title: JSON.stringify(e.evidence || {}, null, 1) }, e.reason))
    );
    this.body.replaceChildren(
      el('h4', {}, 'Triggers'),
      rows.length ? table(['trigger', 'watches', 'state', 'last fired'], rows) : message('No triggers in any pipeline.yaml.'),
      el('h4', {}, 'Events'),
      history.length ? table(['when', 'trigger', 'status', 'why (hover for evidence)'], history) : message('No trigger events yet.')
    );
  }
}
