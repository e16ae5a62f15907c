/**
 * jupyter-widget-relay front-end plugins (JupyterLab 4 and Notebook 7).
 *
 * Every token except the relay service is optional, so the extension loads
 * in any JupyterLab-based app, including pages without notebooks. The status
 * bar module is loaded on demand: some apps (Voilà) do not share it.
 */
import {
  ILayoutRestorer,
  ILabShell,
  type JupyterFrontEnd,
  type JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import type { DocumentRegistry } from '@jupyterlab/docregistry';
import {
  INotebookTracker,
  type INotebookModel,
  type NotebookPanel
} from '@jupyterlab/notebook';
import type { IStatusBar } from '@jupyterlab/statusbar';
import type { IDisposable } from '@lumino/disposable';
import { Signal } from '@lumino/signaling';

import { relayIcon } from './icon';
import { INSPECTOR_ID, WidgetRelayInspector } from './inspector';
import { IWidgetRelayService, WidgetRelayService } from './service';
import { RelayStatusWidget } from './statusview';

export { IWidgetRelayService } from './service';
export type { IKernelSubscription } from './service';

/** Command ids. */
export namespace CommandIDs {
  export const openInspector = 'widget-relay:open-inspector';
}

const PLUGIN_PREFIX = 'jupyter-widget-relay';

function openInspector(app: JupyterFrontEnd): void {
  if (app.commands.hasCommand(CommandIDs.openInspector)) {
    void app.commands.execute(CommandIDs.openInspector);
  }
}

/** Server status and shared per-kernel event sockets. */
const servicePlugin: JupyterFrontEndPlugin<IWidgetRelayService> = {
  id: `${PLUGIN_PREFIX}:service`,
  description: 'Widget relay server status and per-kernel event streams.',
  autoStart: true,
  provides: IWidgetRelayService,
  activate: (): IWidgetRelayService => {
    const service = new WidgetRelayService();
    void service.refreshAvailability();
    return service;
  }
};

/** The status item in every notebook toolbar. */
class ToolbarExtension implements DocumentRegistry.IWidgetExtension<
  NotebookPanel,
  INotebookModel
> {
  constructor(
    private readonly _app: JupyterFrontEnd,
    private readonly _service: IWidgetRelayService
  ) {}

  createNew(panel: NotebookPanel): IDisposable {
    const item = new RelayStatusWidget({
      service: this._service,
      sessionContext: panel.sessionContext,
      variant: 'toolbar',
      onActivate: () => openInspector(this._app)
    });
    if (!panel.toolbar.insertAfter('spacer', 'widgetRelayStatus', item)) {
      panel.toolbar.addItem('widgetRelayStatus', item);
    }
    return item;
  }
}

const toolbarPlugin: JupyterFrontEndPlugin<void> = {
  id: `${PLUGIN_PREFIX}:toolbar`,
  description: 'Widget relay status item in notebook toolbars.',
  autoStart: true,
  requires: [IWidgetRelayService],
  activate: (app: JupyterFrontEnd, service: IWidgetRelayService): void => {
    app.docRegistry.addWidgetExtension(
      'Notebook',
      new ToolbarExtension(app, service)
    );
  }
};

/** The status bar item of the current notebook. */
function statusBarPlugin(
  statusBarToken: typeof IStatusBar
): JupyterFrontEndPlugin<void> {
  return {
    id: STATUS_BAR_PLUGIN_ID,
    description:
      'Widget relay status of the current notebook in the status bar.',
    autoStart: true,
    requires: [IWidgetRelayService],
    optional: [statusBarToken, INotebookTracker, ILabShell],
    activate: (
      app: JupyterFrontEnd,
      service: IWidgetRelayService,
      statusBar: IStatusBar | null,
      tracker: INotebookTracker | null,
      labShell: ILabShell | null
    ): void => {
      if (statusBar === null || tracker === null) {
        return;
      }
      const item = new RelayStatusWidget({
        service,
        variant: 'statusbar',
        onActivate: () => openInspector(app)
      });
      const follow = (): void => {
        item.setSessionContext(tracker.currentWidget?.sessionContext ?? null);
      };
      tracker.currentChanged.connect(follow);
      follow();
      const isActive = (): boolean =>
        tracker.currentWidget !== null &&
        (labShell === null || labShell.currentWidget === tracker.currentWidget);
      const activeStateChanged = new Signal<unknown, void>(item);
      const emitActive = (): void => activeStateChanged.emit(undefined);
      tracker.currentChanged.connect(emitActive);
      labShell?.currentChanged.connect(emitActive);
      statusBar.registerStatusItem(STATUS_BAR_PLUGIN_ID, {
        item,
        align: 'left',
        rank: 4,
        isActive,
        activeStateChanged
      });
    }
  };
}

const STATUS_BAR_PLUGIN_ID = `${PLUGIN_PREFIX}:statusbar`;

/**
 * Adds the status bar plugin where the app shares `@jupyterlab/statusbar`
 * (JupyterLab, Notebook 7). The module is imported on demand, so an app
 * without it (Voilà) loads the rest of the extension without an error.
 */
const statusBarLoaderPlugin: JupyterFrontEndPlugin<void> = {
  id: `${PLUGIN_PREFIX}:statusbar-loader`,
  description:
    'Adds the widget relay status bar item where a status bar exists.',
  autoStart: true,
  activate: (app: JupyterFrontEnd): Promise<void> => addStatusBarPlugin(app)
};

async function addStatusBarPlugin(app: JupyterFrontEnd): Promise<void> {
  if (PageConfig.Extension.isDisabled(STATUS_BAR_PLUGIN_ID)) {
    return;
  }
  let statusBarToken: typeof IStatusBar;
  try {
    ({ IStatusBar: statusBarToken } = await import('@jupyterlab/statusbar'));
  } catch {
    return; // this app shares no status bar module, so it has no status bar
  }
  app.registerPlugin(statusBarPlugin(statusBarToken));
  await app.activatePlugin(STATUS_BAR_PLUGIN_ID);
}

/** The widget state inspector side panel, its command and palette entry. */
const inspectorPlugin: JupyterFrontEndPlugin<void> = {
  id: `${PLUGIN_PREFIX}:inspector`,
  description: 'Side panel listing the widget models held by the relay.',
  autoStart: true,
  requires: [IWidgetRelayService],
  optional: [INotebookTracker, ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    service: IWidgetRelayService,
    tracker: INotebookTracker | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ): void => {
    const inspector = new WidgetRelayInspector({ service });
    inspector.title.icon = relayIcon;
    if (tracker !== null) {
      const follow = (): void => {
        inspector.setSessionContext(
          tracker.currentWidget?.sessionContext ?? null
        );
      };
      tracker.currentChanged.connect(follow);
      follow();
    }
    app.shell.add(inspector, 'right', { rank: 900 });
    restorer?.add(inspector, INSPECTOR_ID);

    app.commands.addCommand(CommandIDs.openInspector, {
      label: 'Open Widget State Inspector',
      caption: 'Show the widget models the widget relay holds for this kernel',
      icon: relayIcon,
      execute: () => {
        app.shell.activateById(INSPECTOR_ID);
      }
    });
    palette?.addItem({
      command: CommandIDs.openInspector,
      category: 'Widget Relay'
    });
  }
};

const plugins: JupyterFrontEndPlugin<unknown>[] = [
  servicePlugin,
  toolbarPlugin,
  statusBarLoaderPlugin,
  inspectorPlugin
];

export default plugins;
