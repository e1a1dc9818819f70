"""The Jupyter Server extension: mlops-nb's REST API, over the registry of the server's root.

Enabled on install (``jupyter-config/jupyter_server_config.d/mlops_nb.json``); check
with ``jupyter server extension list``.
"""

from __future__ import annotations

import os
from pathlib import Path


def _load_jupyter_server_extension(serverapp) -> None:
    from mlops_nb.server.handlers import handlers

    web_app = serverapp.web_app
    root = Path(os.path.expanduser(serverapp.root_dir)).resolve()
    web_app.settings["mlops_nb_root"] = str(root)
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    serverapp.log.info(f"mlops-nb: REST API at {web_app.settings['base_url']}mlops-nb/api/ over {root}")


load_jupyter_server_extension = _load_jupyter_server_extension
