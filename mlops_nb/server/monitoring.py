"""The REST API's monitoring: a served model's prediction log, window by window (what `mlops-nb monitor` shows).

    GET /mlops-nb/api/models/churn/monitor?window=1h&alias=production&last=48
"""

from __future__ import annotations

import tornado

from mlops_nb.server.handlers import MlopsHandler


class MonitorHandler(MlopsHandler):
    @tornado.web.authenticated
    def get(self, name):
        def act():
            from mlops_nb.monitoring.monitor import monitor

            found = monitor(self.store(), name, alias=self.get_argument("alias", "production"),
                            window=self.get_argument("window", "1h"), metric=self.get_argument("metric", None),
                            last=self.count("last", 48, most=1000))
            self.reply(found.to_dict())
        self._handle(act)
