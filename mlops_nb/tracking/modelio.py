"""Turning fitted models into bytes and back, and describing what they take as input."""

from __future__ import annotations

import pickle
from typing import Any

from mlops_nb.errors import InvalidInputError


def model_flavor(model: Any) -> str:
    module = type(model).__module__ or ""
    return "sklearn" if module.split(".")[0] == "sklearn" else "pickle"


def serialize_model(model: Any, name: str) -> bytes:
    try:
        return pickle.dumps(model, protocol=5)
    except Exception as exc:  # pickling raises many types (PicklingError, TypeError, AttributeError)
        raise InvalidInputError(f"model {name!r} ({type(model).__name__}) cannot be pickled: {exc}") from None


def deserialize_model(data: bytes) -> Any:
    return pickle.loads(data)


def infer_signature(model: Any, X: Any = None) -> dict | None:
    """Input columns and dtypes (from ``X`` when given, else what the fitted model saw),
    and the classes a classifier predicts."""
    signature: dict[str, Any] = {}
    if X is not None and hasattr(X, "dtypes") and hasattr(X, "columns"):
        signature["inputs"] = [{"name": str(c), "dtype": str(t)} for c, t in X.dtypes.items()]
    elif X is not None and hasattr(X, "shape"):
        dtype = str(getattr(X, "dtype", "unknown"))
        width = X.shape[1] if len(X.shape) > 1 else 1
        signature["inputs"] = [{"name": f"x{i}", "dtype": dtype} for i in range(width)]
    elif hasattr(model, "feature_names_in_"):
        signature["inputs"] = [{"name": str(c), "dtype": None} for c in model.feature_names_in_]
    elif hasattr(model, "n_features_in_"):
        signature["inputs"] = [{"name": f"x{i}", "dtype": None} for i in range(int(model.n_features_in_))]
    classes = getattr(model, "classes_", None)
    if classes is not None:
        signature["outputs"] = {"classes": [c.item() if hasattr(c, "item") else c for c in classes]}
    return signature or None
