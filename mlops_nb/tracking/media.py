"""What a run can show a person: figures, tables, images, text and dicts, each kept as one artifact.

    kind     given                                              kept as
    figure   a matplotlib Figure (or Axes)                      PNG (.svg, .pdf or .jpg when the name ends so)
             a plotly Figure                                    its JSON (.plotly.json), drawn by plotly.js
    table    a DataFrame (or Series)                            Parquet, its column types kept
    image    a numpy array: H x W gray, H x W x 3 RGB or        PNG (Pillow encodes it)
             H x W x 4 RGBA; uint8, or decimals in [0, 1]
             a PIL image, or the path of an image file          PNG, or the file as it is
    text     a str                                              .txt unless the name ends otherwise
    dict     a JSON-able dict                                   JSON (YAML when the name ends .yaml/.yml)

Each function here gives ``(content, name)``: the bytes to store and the artifact's name with
the ending its content needs. The libraries are imported only when a value of theirs comes.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

from mlops_nb.errors import InvalidInputError

FIGURE_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".jpg": "jpg", ".jpeg": "jpg"}
IMAGE_FILES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".bmp")


def _with_suffix(name: str, suffix: str, allowed: tuple[str, ...] = ()) -> str:
    """``name`` as given when it ends with an allowed suffix, else with ``suffix`` added."""
    return name if PurePosixPath(name).suffix.lower() in (allowed or (suffix,)) else name + suffix


def figure(fig: Any, name: str) -> tuple[bytes, str]:
    module = type(fig).__module__
    if module.startswith("plotly"):
        return fig.to_json().encode(), _with_suffix(name, ".plotly.json", (".json",))
    target = fig if hasattr(fig, "savefig") else getattr(fig, "figure", None)  # an Axes gives its Figure
    if target is None or not hasattr(target, "savefig"):
        raise InvalidInputError(f"log_figure takes a matplotlib or plotly figure, got {type(fig).__name__}; "
                                "for a picture as an array or a file, use mlops.log_image")
    name = _with_suffix(name, ".png", tuple(FIGURE_FORMATS))
    out = io.BytesIO()
    target.savefig(out, format=FIGURE_FORMATS[PurePosixPath(name).suffix.lower()], bbox_inches="tight")
    return out.getvalue(), name


def table(frame: Any, name: str) -> tuple[bytes, str]:
    import pandas as pd

    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInputError(f"log_table takes a pandas DataFrame, got {type(frame).__name__}: "
                                "make one with pd.DataFrame(...)")
    if not all(isinstance(c, str) for c in frame.columns):  # Parquet names columns with text
        frame = frame.rename(columns=str)
    out = io.BytesIO()
    frame.to_parquet(out)
    return out.getvalue(), _with_suffix(name, ".parquet")


def image(data: Any, name: str) -> tuple[bytes, str]:
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if path.suffix.lower() not in IMAGE_FILES:
            raise InvalidInputError(f"log_image takes an image file ({', '.join(IMAGE_FILES)}), got {path.name}")
        if not path.is_file():
            raise InvalidInputError(f"no image file at {path}")
        return path.read_bytes(), _with_suffix(name, path.suffix.lower(), IMAGE_FILES)
    try:
        from PIL import Image
    except ImportError:
        raise InvalidInputError("log_image of an array needs Pillow to write PNG: pip install pillow") from None
    if not isinstance(data, Image.Image):
        data = Image.fromarray(_pixels(data))
    out = io.BytesIO()
    data.save(out, format="PNG")
    return out.getvalue(), _with_suffix(name, ".png")


def _pixels(data: Any):
    import numpy as np

    array = np.asarray(data)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or not array.size:
        raise InvalidInputError(f"log_image takes an H x W, H x W x 3 or H x W x 4 array, got shape {array.shape}")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise InvalidInputError("an image of decimals has its values in [0, 1]; give uint8 values 0-255 "
                                    "otherwise")
        array = np.round(array * 255)
    elif array.dtype.kind in "iub" and (array.min() < 0 or array.max() > 255):
        raise InvalidInputError("an image of integers has its values in 0-255")
    return array.astype(np.uint8)


def text(value: Any, name: str) -> tuple[bytes, str]:
    if not isinstance(value, str):
        raise InvalidInputError(f"log_text takes a str, got {type(value).__name__}; for a dict use log_dict")
    return value.encode(), name if PurePosixPath(name).suffix else name + ".txt"


def dictionary(value: Any, name: str) -> tuple[bytes, str]:
    if not isinstance(value, dict):
        raise InvalidInputError(f"log_dict takes a dict, got {type(value).__name__}")
    name = _with_suffix(name, ".json", (".json", ".yaml", ".yml"))
    if name.endswith((".yaml", ".yml")):
        import yaml

        try:
            return yaml.safe_dump(value, sort_keys=False).encode(), name
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"log_dict keeps plain values (numbers, text, lists, dicts): {exc}") from None
    try:
        return json.dumps(value, indent=2, allow_nan=False).encode(), name
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"log_dict keeps JSON values (numbers, text, lists, dicts): {exc}") from None
