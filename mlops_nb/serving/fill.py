"""Requests that name entities only (``mlops-nb serve churn --features customer_stats``): the model's features
filled in from the feature views' online tables, the same latest values ``mlops.online_features`` returns.

A row gives each view's entity key; every column of the model's signature that the row does not give and a
view has is filled with that entity's latest value. A value the client sends wins over the stored one (a
feature known only at request time). The entity keys themselves go to the model only when its signature has
them. An entity the online table does not hold is a 422 naming it: a row of missing values would be scored
without anyone noticing.
"""

from __future__ import annotations

from mlops_nb.features.tables import entity_key
from mlops_nb.features.views import FeatureView
from mlops_nb.registry import features as feature_store
from mlops_nb.serving.protocol import RequestError, Rows, Signature


class FeatureFiller:
    def __init__(self, store, views: list[FeatureView], signature: Signature | None):
        self.store = store
        self.views = views
        wanted = signature.columns if signature is not None else [f for v in views for f in v.features]
        # Each filled column from the first view that has it, in the signature's order.
        self.filled = {column: next(v for v in views if column in v.features)
                       for column in wanted if any(column in v.features for v in views)}
        self.keys = list(dict.fromkeys(k for v in views for k in v.entities))
        self.to_model = set(signature.columns) if signature is not None else None

    def describe(self) -> str:
        """What is filled from where, e.g. "monthly_charges, plan from customer_stats (by customer_id)"."""
        return "; ".join(f"{', '.join(names)} from {view.name} (by {', '.join(view.entities)})"
                         for view, names in self._by_view(set())) or "nothing"

    def entities(self, rows: Rows):
        """The entity keys ``rows`` name, as a frame (what the prediction log keeps beside the features)."""
        import pandas as pd

        index = {c: i for i, c in enumerate(rows.columns)}
        return pd.DataFrame({key: [row[index[key]] for row in rows.rows] for key in self.keys if key in index})

    def fill(self, rows: Rows) -> Rows:
        """The rows with the model's features added from the online tables (a 400/422 naming what is wrong)."""
        index = {c: i for i, c in enumerate(rows.columns)}
        to_fill = self._by_view(set(index))  # a client that sends every feature needs no key
        for view, names in to_fill:
            missing = [k for k in view.entities if k not in index]
            if missing:
                raise RequestError(400, f"each row needs {missing[0]!r}, the key of feature view {view.name!r} "
                                        f"(or the features {', '.join(names)})",
                                   [{"field": missing[0], "problem": "missing column"}])
        columns = [c for c in rows.columns if c not in self.keys or self.to_model is None or c in self.to_model]
        kept = [index[c] for c in columns]
        out = [[row[i] for i in kept] for row in rows.rows]
        for view, names in to_fill:
            keys = [entity_key([row[index[k]] for k in view.entities]) for row in rows.rows]
            found = feature_store.online_rows(self.store, view.name, list(dict.fromkeys(keys)))
            unknown = [key for key in dict.fromkeys(keys) if key not in found]
            if unknown:
                shown = ", ".join(unknown[:5])
                raise RequestError(422, f"feature view {view.name!r} holds no values for {len(unknown)} "
                                        f"entit{'ies' if len(unknown) > 1 else 'y'} ({shown}): write them with "
                                        "mlops.write_features first, or send the features in the row",
                                   [{"field": ", ".join(view.entities), "problem": f"no online features for {key}"}
                                    for key in unknown[:20]])
            for key, row in zip(keys, out):
                values = found[key][1]
                row.extend(values.get(name) for name in names)
            columns += names
        return Rows(columns, out)

    def _by_view(self, given: set[str]) -> list[tuple[FeatureView, list[str]]]:
        """The columns to fill, those not ``given``, by view."""
        by_view: dict[str, list[str]] = {}
        for column, view in self.filled.items():
            if column not in given:
                by_view.setdefault(view.name, []).append(column)
        return [(view, by_view[view.name]) for view in self.views if view.name in by_view]
