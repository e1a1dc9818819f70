"""Where the registry lives: the project home, a ``.mlops/`` folder found like git finds ``.git``.

The home holds the embedded SQLite registry (``registry.db``) and this machine's working files (executed
notebooks, kernel logs). A team's registry is a PostgreSQL database instead, named by a URL: in
``$MLOPS_NB_REGISTRY`` (what ``--registry`` and ``mlops.set_registry`` set), else on the ``registry:``
line of the project's ``mlops-nb.yaml`` (beside ``.mlops/``); the home then keeps only the working files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mlops_nb.errors import InvalidInputError, NotFoundError

HOME_DIRNAME = ".mlops"
ENV_VAR = "MLOPS_NB_HOME"
REGISTRY_VAR = "MLOPS_NB_REGISTRY"
ARTIFACTS_VAR = "MLOPS_NB_ARTIFACTS"
CONFIG_NAME = "mlops-nb.yaml"
DB_NAME = "registry.db"


def registry_url(home: str | os.PathLike) -> str | None:
    """The PostgreSQL URL of the registry for ``home``, or None for the SQLite file in it."""
    url = os.environ.get(REGISTRY_VAR, "").strip()
    origin = f"${REGISTRY_VAR}"
    if not url:
        url, origin = project_setting(home, "registry"), f"the registry: line of {config_path(home)}"
    if not url or url == "sqlite":
        return None
    if not re.match(r"^postgres(ql)?://", url):
        raise InvalidInputError(f"{origin} is {mask_url(url)!r}: give a postgresql://user@host:port/db URL, "
                                "or 'sqlite' (the default) for the embedded registry in .mlops")
    return url


def set_registry(url: str | None) -> None:
    """Use the registry ``url`` names in this process and the processes it starts (kernels, workers):
    ``postgresql://user@host:port/db``, or ``"sqlite"`` for the embedded file; None: as configured again.

    A URL whose password is masked (``***``, as messages and executed notebooks show it) means the same
    database as ``$MLOPS_NB_REGISTRY`` if that names it, with its password; else libpq finds the password
    in ``PGPASSWORD`` or ``~/.pgpass``, as it does for a URL without one."""
    if url is None:
        os.environ.pop(REGISTRY_VAR, None)
        return
    url = str(url).strip()
    current = os.environ.get(REGISTRY_VAR, "")
    if "***" in url:
        if current and mask_url(current) == url:
            return
        url = strip_password(url)
    if url != "sqlite" and not re.match(r"^postgres(ql)?://", url):
        raise InvalidInputError(f"registry {mask_url(url)!r}: give a postgresql://user@host:port/db URL, or "
                                "'sqlite' for the embedded registry in .mlops")
    os.environ[REGISTRY_VAR] = url


def strip_password(url: str) -> str:
    """``url`` without its password (libpq then reads it from PGPASSWORD or ~/.pgpass)."""
    url = _PASSWORD.sub(r"\1@", url).replace(":@", "@", 1)
    return re.sub(r"[?&]$", "", _PASSWORD_PARAM_WHOLE.sub("", url))


def config_path(home: str | os.PathLike) -> Path:
    """The project's ``mlops-nb.yaml``: beside the ``.mlops`` home (or in a project folder given as home)."""
    home = Path(home)
    return (home.parent if home.name == HOME_DIRNAME else home) / CONFIG_NAME


def project_setting(home: str | os.PathLike, key: str) -> str | None:
    value = _project_config(config_path(home)).get(key)
    return None if value is None else str(value).strip()


_configs: dict[Path, tuple[tuple[int, int], dict]] = {}


def _project_config(path: Path) -> dict:
    """The project's settings, parsed again only when the file changes (every open of the registry asks)."""
    try:
        stat = path.stat()
    except OSError:
        return {}
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _configs.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError:
        return {}
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path} is not valid YAML ({str(exc).splitlines()[0]}): fix it, or delete it "
                                "to use the embedded registry") from None
    data = data if isinstance(data, dict) else {}
    _configs[path] = (stamp, data)
    return data


def mask_url(text: str) -> str:
    """``text`` with the password of any database URL in it replaced by ``***``."""
    return _PASSWORD_PARAM.sub(r"\1***", _PASSWORD.sub(r"\1***@", text))


_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@", re.IGNORECASE)
_PASSWORD_PARAM = re.compile(r"(\bpassword=)[^&\s]*", re.IGNORECASE)
_PASSWORD_PARAM_WHOLE = re.compile(r"\bpassword=[^&\s]*&?", re.IGNORECASE)


def has_registry(home: str | os.PathLike) -> bool:
    """A registry is there for ``home``: its SQLite file, or a PostgreSQL one named for it."""
    return (Path(home) / DB_NAME).exists() or registry_url(home) is not None


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
        if must_exist and not has_registry(path):
            raise NotFoundError(
                f"no mlops-nb registry at {path}: log a run there first, or point --home/"
                f"{ENV_VAR} at a folder that holds registry.db")
        return path
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / HOME_DIRNAME
        if (candidate / DB_NAME).exists() or (registry_url(candidate) and (candidate.is_dir()
                                                                          or config_path(candidate).exists())):
            return candidate
    if must_exist and registry_url(here / HOME_DIRNAME) is None:  # a PostgreSQL registry is always there
        raise NotFoundError(
            f"no mlops-nb registry ({HOME_DIRNAME}/registry.db) in {here} or its parents: "
            f"log a run first, or pass --home / set {ENV_VAR}")
    return here / HOME_DIRNAME


def _is_project(path: Path) -> bool:
    """A project folder rather than a registry: it holds a .mlops/ or a pipeline file, and no registry.db."""
    return (path.name != HOME_DIRNAME and path.is_dir() and not (path / DB_NAME).exists()
            and ((path / HOME_DIRNAME).is_dir() or (path / "pipeline.yaml").is_file()
                 or (path / CONFIG_NAME).is_file()))
