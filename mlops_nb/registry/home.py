"""Where the registry lives: the project home, a ``.mlops/`` folder found like git finds ``.git``."""

from __future__ import annotations

import os
from pathlib import Path

from mlops_nb.errors import NotFoundError

HOME_DIRNAME = ".mlops"
ENV_VAR = "MLOPS_NB_HOME"


def find_home(home: str | os.PathLike | None = None, *, start: str | os.PathLike | None = None,
              must_exist: bool = False) -> Path:
    """Return the project's ``.mlops`` folder.

    Order: an explicit ``home``, then ``$MLOPS_NB_HOME``, then the nearest ``.mlops/``
    in the working directory or one of its parents, else ``./.mlops`` (created on
    first write). With ``must_exist`` a missing registry is an error instead.
    """
    explicit = home if home is not None else os.environ.get(ENV_VAR) or None
    if explicit is not None:
        path = Path(explicit).expanduser().resolve()
        if _is_project(path):  # `set_home(".")` in a project means its .mlops, not a registry.db beside its files
            path = path / HOME_DIRNAME
        if must_exist and not (path / "registry.db").exists():
            raise NotFoundError(
                f"no mlops-nb registry at {path}: log a run there first, or point --home/"
                f"{ENV_VAR} at a folder that holds registry.db")
        return path
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / HOME_DIRNAME
        if (candidate / "registry.db").exists():
            return candidate
    if must_exist:
        raise NotFoundError(
            f"no mlops-nb registry ({HOME_DIRNAME}/registry.db) in {here} or its parents: "
            f"log a run first, or pass --home / set {ENV_VAR}")
    return here / HOME_DIRNAME


def _is_project(path: Path) -> bool:
    """A project folder rather than a registry: it holds a .mlops/ or a pipeline file, and no registry.db."""
    return (path.name != HOME_DIRNAME and path.is_dir() and not (path / "registry.db").exists()
            and ((path / HOME_DIRNAME).is_dir() or (path / "pipeline.yaml").is_file()))
