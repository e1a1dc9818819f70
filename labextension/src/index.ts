import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { IFrame } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { BoxPanel, TabPanel, Widget } from '@lumino/widgets';

import { api, apiPath, setRegistry } from './api';
import { Dashboard } from './dashboard';
import { FeaturesTab } from './features';
import { MonitorTab } from './monitor';
import { ModelsTab, PipelinesTab, RunsTab, Tab, TriggersTab } from './panels';

const OPEN = 'mlops-nb:open';
const TRACK = 'mlops-nb:track-notebook';
const DASHBOARD = 'mlops-nb:dashboard';

/** The sidebar: a registry picker over the Runs, Models, Pipelines, Triggers, Monitor and Features tabs. It polls lightly,
 * and closely only while a run goes on. */
class Sidebar extends BoxPanel {
  readonly tabs: Tab[];
  readonly panel: TabPanel;
  private picker = document.createElement('select');
  private timer: number | undefined;
  private polls = 0;

  constructor(open: (runId: string, label: string, registry: string | null) => void, openDashboard: () => void) {
    super({ direction: 'top-to-bottom', spacing: 0 });
    this.id = 'mlops-nb-sidebar';
    this.addClass('mlops-sidebar');
    this.title.caption = 'mlops-nb: runs, models, pipelines, triggers, monitoring and features';
    this.title.label = 'mlops';
    const header = new Widget();
    header.addClass('mlops-registry');
    const label = document.createElement('label');
    label.append('registry ', this.picker);
    this.picker.title = 'The registry (.mlops folder) these tabs show; each project keeps its own';
    this.picker.onchange = () => {
      setRegistry(this.picker.value || null);
      void this.current().refresh();
    };
    // A project made after JupyterLab started shows up in the list when it is opened.
    this.picker.onfocus = () => void this.loadRegistries();
    const dashboard = document.createElement('button');
    dashboard.className = 'jp-mod-styled mlops-button mlops-open-dashboard';
    dashboard.textContent = 'Dashboard';
    dashboard.title = 'Open the runs, models and monitoring at full width, in a main-area tab';
    dashboard.onclick = openDashboard;
    header.node.append(label, dashboard);
    this.panel = new TabPanel({ tabPlacement: 'top' });
    this.tabs = [new RunsTab(), new ModelsTab(), new PipelinesTab(open), new TriggersTab(), new MonitorTab(), new FeaturesTab()];
    for (const tab of this.tabs) {
      this.panel.addWidget(tab);
    }
    this.panel.currentChanged.connect(() => void this.current().refresh());
    this.addWidget(header);
    this.addWidget(this.panel);
    BoxPanel.setStretch(header, 0);
    BoxPanel.setStretch(this.panel, 1);
  }

  /** The registries the server finds (its root's own first); keeps the one picked if it is still there. */
  async loadRegistries(): Promise<void> {
    let data: any;
    try {
      data = await api('registries');
    } catch {
      return;
    }
    const picked = this.picker.value;
    this.picker.replaceChildren(
      ...data.registries.map((r: any) => {
        const option = document.createElement('option');
        option.value = r.id;
        option.textContent = r.exists ? r.id : `${r.id} (empty)`;
        option.title = r.home;
        return option;
      })
    );
    // Keep the pick while it holds a registry; an empty pick gives way to the server's default.
    if (data.registries.some((r: any) => r.id === picked && r.exists)) {
      this.picker.value = picked;
    }
    const changed = (this.picker.value || null) !== picked;
    setRegistry(this.picker.value || null);
    if (changed && picked) {
      void this.current().refresh();
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.loadRegistries().then(() => this.current().refresh());
  }

  current(): Tab {
    return (this.panel.currentWidget as Tab) || this.tabs[0];
  }

  async start(): Promise<void> {
    await this.loadRegistries();
    void this.current().refresh();
    this.schedule(3000);
  }

  /** Every 3 s while a run is going on; otherwise a cheap status check every 15 s. */
  private schedule(delay: number): void {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(async () => {
      let running = false;
      try {
        const data = await api("runs?filter=status%20%3D%20'running'&max_results=1");
        running = data.runs.length > 0;
      } catch {
        running = false;
      }
      this.polls += 1;
      if (this.isVisible && this.polls % 5 === 0) {
        await this.loadRegistries();
      }
      if (this.isVisible && (running || this.polls % 5 === 0)) {
        await this.current().refresh().catch(() => undefined);
      }
      this.schedule(running ? 3000 : 15000);
    }, delay);
  }

  dispose(): void {
    window.clearTimeout(this.timer);
    super.dispose();
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'mlops-nb:sidebar',
  description: 'mlops-nb runs, models, pipelines and triggers in a left sidebar',
  autoStart: true,
  requires: [ILabShell],
  optional: [ICommandPalette, ILauncher],
  activate: (app: JupyterFrontEnd, shell: ILabShell, palette: ICommandPalette | null, launcher: ILauncher | null) => {
    // The active notebook panel, found by shape so that this extension needs no notebook package.
    const currentNotebook = (): any => {
      const widget: any = shell.currentWidget;
      return widget && widget.content && widget.content.model && widget.context ? widget : null;
    };
    // An executed notebook lives in the registry's hidden folder, which the file browser does not
    // open: the server renders it read-only, and it shows in a tab of its own.
    const showExecuted = (runId: string, label: string, registry: string | null): void => {
      const id = `mlops-nb-executed-${runId}`;
      for (const widget of shell.widgets('main')) {
        if (widget.id === id) {
          shell.activateById(id);
          return;
        }
      }
      const frame = new IFrame({ sandbox: [] });
      const base = URLExt.join(ServerConnection.makeSettings().baseUrl, 'mlops-nb', 'api');
      frame.url = URLExt.join(base, apiPath(`runs/${encodeURIComponent(runId)}/notebook`, registry));
      const widget = new MainAreaWidget({ content: frame });
      widget.id = id;
      widget.addClass('mlops-executed');
      widget.title.label = label;
      widget.title.caption = `executed notebook of run ${runId} (read-only)`;
      widget.title.closable = true;
      shell.add(widget, 'main');
      shell.activateById(id);
    };
    let dashboard: Dashboard | null = null;
    const openDashboard = (): void => {
      if (!dashboard || dashboard.isDisposed) {
        dashboard = new Dashboard();
        shell.add(dashboard, 'main');
      }
      shell.activateById(dashboard.id);
    };
    const sidebar = new Sidebar(showExecuted, () => void app.commands.execute(DASHBOARD));
    shell.add(sidebar, 'left', { rank: 900 });
    void sidebar.start();

    app.commands.addCommand(OPEN, {
      label: 'mlops-nb: Show runs, models, pipelines and triggers',
      execute: () => shell.activateById(sidebar.id)
    });
    app.commands.addCommand(DASHBOARD, {
      label: 'mlops-nb Dashboard',
      caption: 'Runs by pipeline and experiment, their figures and tables, models and their lineage, monitoring',
      execute: openDashboard
    });
    app.commands.addCommand(TRACK, {
      label: 'Track this notebook with mlops-nb',
      caption: 'Insert a first cell that loads the mlops-nb magics (%%track, %mlops)',
      isEnabled: () => !!currentNotebook(),
      execute: () => {
        const panel = currentNotebook();
        if (!panel) {
          return;
        }
        const model = panel.content.model;
        if (!model) {
          return;
        }
        const first = model.cells.length ? model.cells.get(0).sharedModel.getSource() : '';
        if (first.includes('%load_ext mlops_nb')) {
          return;
        }
        model.sharedModel.insertCell(0, { cell_type: 'code', source: '%load_ext mlops_nb\n%mlops experiment ' + panel.context.path.replace(/\.ipynb$/, '').split('/').pop() });
      }
    });
    if (palette) {
      palette.addItem({ command: OPEN, category: 'mlops-nb' });
      palette.addItem({ command: TRACK, category: 'mlops-nb' });
      palette.addItem({ command: DASHBOARD, category: 'mlops-nb' });
    }
    if (launcher) {
      launcher.add({ command: DASHBOARD, category: 'Other', rank: 1 });
    }
    app.contextMenu.addItem({ command: TRACK, selector: '.jp-Notebook', rank: 50 });
  }
};

export default plugin;
