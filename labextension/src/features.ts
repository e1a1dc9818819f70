import { api } from './api';
import { el, message, picker, when } from './dom';
import { Tab, table } from './panels';

function ago(seconds: number | null | undefined): string {
  if (!seconds) {
    return 'never';
  }
  const age = Math.max(0, Date.now() / 1000 - seconds);
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]] as [string, number][]) {
    if (age >= size) {
      return `${Math.round(age / size)}${unit} ago`;
    }
  }
  return `${Math.round(age)}s ago`;
}

function day(seconds: number | null | undefined): string {
  return seconds ? new Date(seconds * 1000).toISOString().slice(0, 16).replace('T', ' ') : '';
}

/** Features: the feature views, their schema and freshness, each write's drift, the models trained on them. */
export class FeaturesTab extends Tab {
  private chosen: string | null = null;

  constructor() {
    super('Features', 'mlops-features');
  }

  async refresh(): Promise<void> {
    let listed: any;
    try {
      listed = await api('features');
    } catch (error) {
      this.showError(error);
      return;
    }
    this.clearError();
    const views: any[] = listed.features;
    if (!views.length) {
      this.body.replaceChildren(
        message(listed.message || 'No feature views yet: declare one in features.yaml, write it with mlops.write_features(name, df).')
      );
      return;
    }
    const overview = table(
      ['view', 'entity', 'writes', 'rows', 'online', 'last write', 'models'],
      views.map(v =>
        el('tr', {}, el('td', { class: 'mlops-name' }, v.name), el('td', {}, (v.entity || []).join(', ')),
          el('td', { class: 'mlops-num' }, String(v.versions)), el('td', { class: 'mlops-num' }, v.rows.toLocaleString()),
          el('td', { class: 'mlops-num' }, v.entities.toLocaleString()),
          el('td', { title: when(v.last_write) }, ago(v.last_write)), el('td', {}, v.models.join(', ')))
      )
    );
    const declared = views.filter(v => v.declared).map(v => v.name);
    if (!declared.length) {
      this.body.replaceChildren(overview, message('These views are not declared in this project’s features.yaml.'));
      return;
    }
    const chosen: string = this.chosen && declared.includes(this.chosen) ? this.chosen : declared[0];
    this.chosen = chosen;
    let view: any;
    try {
      view = await api(`features/${encodeURIComponent(chosen)}`);
    } catch (error) {
      this.showError(error);
      return;
    }
    const choose = picker(declared, chosen, name => {
      this.chosen = name;
      void this.refresh();
    });
    const models = view.models.map((m: any) => `${m.name}/${m.version}` + (m.aliases.length ? ` (${m.aliases.join(', ')})` : ''));
    const facts = [
      `entity ${view.entity.join(', ')}, time ${view.timestamp}` + (view.ttl_seconds ? `, ttl ${view.ttl_seconds / 86400} days` : ''),
      `models trained on it: ${models.join(', ') || 'none yet'}`,
      view.reference ? `drift: each write against what ${view.reference} (production) was trained on` : view.note ? `drift: ${view.note}` : ''
    ].filter(Boolean);
    const features = table(
      ['feature', 'dtype', 'description'],
      view.features.map((f: any) => el('tr', {}, el('td', {}, f.name), el('td', {}, f.dtype), el('td', {}, f.description)))
    );
    const writes = table(
      ['write', 'rows', 'values to', 'written', 'drift'],
      [...view.writes].reverse().map((w: any) => {
        const share = w.drift_share === undefined ? '' : `${Math.round(w.drift_share * 100)}%`;
        return el('tr', { class: w.drifted && w.drifted.length ? 'mlops-differs' : '' },
          el('td', { class: 'mlops-num' }, String(w.version)), el('td', { class: 'mlops-num' }, w.n_rows.toLocaleString()),
          el('td', {}, day(w.max_time)), el('td', { title: when(w.created_at) }, ago(w.created_at)),
          el('td', { title: (w.drifted || []).join(', ') }, share + (w.drifted && w.drifted.length ? ` (${w.drifted.slice(0, 3).join(', ')})` : '')));
      })
    );
    this.body.replaceChildren(
      overview,
      el('div', { class: 'mlops-toolbar' }, choose, el('span', { class: 'mlops-note' }, view.description || '')),
      ...facts.map(f => el('div', { class: 'mlops-note mlops-feature-fact' }, f)),
      features,
      el('h4', {}, 'Writes, newest first'),
      view.writes.length ? writes : message(`Never written: mlops.write_features('${view.name}', df)`)
    );
  }
}
