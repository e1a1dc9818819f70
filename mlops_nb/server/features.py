"""The REST API's feature views (what `mlops-nb features ls|show` shows), for the sidebar's Features tab.

    GET /mlops-nb/api/features                  the views declared in the registry's project and written to it
    GET /mlops-nb/api/features/customer_stats   one view: schema, writes with their drift, models trained on it

The declarations are read from the project the registry belongs to (``features.yaml``, or ``features:`` in
``pipeline.yaml``, in the folder holding ``.mlops``).
"""

from __future__ import annotations

import tornado

from mlops_nb.server.handlers import MlopsHandler


class FeaturesHandler(MlopsHandler):
    empty = {"features": []}

    @tornado.web.authenticated
    def get(self):
        def act():
            from mlops_nb.features.catalog import list_views
            from mlops_nb.features.views import find_views

            store = self.store()
            views, _ = find_views(store.home.parent)
            self.reply({"features": list_views(store, views)})
        self._handle(act)


class FeatureHandler(MlopsHandler):
    @tornado.web.authenticated
    def get(self, name):
        def act():
            from mlops_nb.features.catalog import describe_view
            from mlops_nb.features.views import find_views, get_view

            store = self.store()
            views, where = find_views(store.home.parent)
            self.reply(describe_view(store, get_view(views, name, where), last=self.count("last", 10, most=1000)))
        self._handle(act)
