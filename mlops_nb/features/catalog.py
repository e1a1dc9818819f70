"""What ``mlops-nb features ls|show`` and the sidebar show: the views declared here and written to the registry,
their schema, freshness, writes over time (with their drift from production's training frame) and the models
trained on them."""

from __future__ import annotations

import time

from mlops_nb.features.views import FeatureView
from mlops_nb.registry import features as feature_store


def list_views(store, views: dict[str, FeatureView]) -> list[dict]:
    """A row per view declared in ``views`` or written to the registry (a view written by another project
    is listed too, without its declaration)."""
    summaries = feature_store.summaries(store)
    rows = []
    for name in sorted(set(views) | set(summaries)):
        view, summary = views.get(name), summaries.get(name, {})
        rows.append({"name": name, "declared": view is not None,
                     "entity": list(view.entities) if view else None,
                     "features": len(view.features) if view else None,
                     "versions": summary.get("versions", 0), "rows": summary.get("rows") or 0,
                     "entities": summary.get("entities", 0), "last_write": summary.get("last_write"),
                     "newest_time": summary.get("newest_time"),
                     "models": [f"{m['name']}/{m['version']}" for m in feature_store.models_using(store, name)]})
    return rows


def describe_view(store, view: FeatureView, *, last: int = 10) -> dict:
    """``view``'s declaration, its newest ``last`` writes with their drift, and the models trained on it."""
    from mlops_nb.features.monitor import history

    found = history(store, view, last=last)
    writes = found["writes"]
    return {"name": view.name, "description": view.description, "entity": list(view.entities),
            "timestamp": view.timestamp, "ttl_seconds": view.ttl, "source": view.source,
            "features": [{"name": f.name, "dtype": f.dtype, "description": f.description}
                         for f in view.features.values()],
            "versions": found["versions"], "writes": writes, "models": found["models"],
            "reference": found["reference"], "note": found["note"],
            "freshness_seconds": time.time() - writes[-1]["created_at"] if writes else None}
