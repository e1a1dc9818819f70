"""Which params a notebook takes, and the values a step gets.

A notebook's params are what papermill's own inspection reads in its cell tagged
``parameters`` (``papermill --help-notebook``): typed (``a: float = 2.25``),
multi-line and commented assignments, each line on its own, so one broken line does
not hide the others. ``%%track``, ``-p`` checking, sweeps and the REST API all read
them here. Values come from the pipeline, then the step, then the command line
(``-p C=0.5`` for every step that declares C, ``-p train.C=0.5`` for one step). A
name the notebook does not declare is an error listing the ones it does;
command-line text is converted to the type of the notebook's default.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from mlops_nb.errors import InvalidInputError
from mlops_nb.pipeline.spec import Pipeline, suggest

PARAMETERS_TAG = "parameters"
INJECTED_HEADER = "# Parameters"  # papermill's injected-parameters cell starts so (papermill.translators)
_MISSING = object()
_TYPE_NAMES = {"int": "int", "float": "float", "str": "str", "bool": "bool", "list": "list", "dict": "dict",
               "NoneType": "NoneType", "List": "list", "Dict": "dict", "tuple": "tuple"}
_read: dict[tuple, dict] = {}


class ParamError(InvalidInputError):
    """A param is unknown to a notebook or cannot take the value given."""


@dataclass(frozen=True)
class Declared:
    name: str
    default: Any               # _MISSING when not a literal
    type_name: str             # int, float, str, bool, NoneType, list, dict, or "any"
    help: str = ""


def read_notebook(path: str | Path) -> dict:
    """A notebook file as JSON; a one-line error naming the file when it is not one."""
    path = Path(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"cannot read notebook {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InvalidInputError(f"notebook {path} is not valid notebook JSON ({exc}); open it in JupyterLab "
                                "and save it again, or restore it from version control") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells", []), list) or \
            not all(isinstance(cell, dict) for cell in nb.get("cells", [])):
        raise InvalidInputError(f"notebook {path} is JSON but not a notebook (no list of cells)")
    return nb


def declared_params(notebook: str | Path) -> dict[str, Declared] | None:
    """The params of a notebook's ``parameters`` cell; None when it has no such cell."""
    nb = read_notebook(notebook)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            return parse_parameters(_source(cell), _kernel(nb), _language(nb))
    return None


def declared_defaults(notebook: str | Path) -> dict[str, Any]:
    """The literal defaults of a notebook's parameters cell (what a step runs with unless told otherwise)."""
    return {name: d.default for name, d in (declared_params(notebook) or {}).items() if d.default is not _MISSING}


def parameter_names(path: str | os.PathLike) -> list[str]:
    """The names the notebook's ``parameters`` cell declares ([] if none, or if the file cannot be read)."""
    try:
        return list(declared_params(path) or {})
    except InvalidInputError:
        return []


def parse_parameters(source: str, kernel: str = "python3", language: str = "python") -> dict[str, Declared]:
    """What papermill's translator for the kernel reads in a parameters cell, with typed defaults.

    papermill is imported only when this source was never read before: the result is kept by
    the source's content (in memory, and under ~/.cache/mlops-nb) so that a run whose steps are
    all cached does not pay for importing the notebook stack."""
    key = hashlib.sha256(json.dumps(["v1", source, kernel, language]).encode()).hexdigest()
    found = _read.get(key)
    if found is None:
        found = _read[key] = _cached_on_disk(key) or _store_on_disk(key, _inspect(source, kernel, language))
    return {name: Declared(name, _default(entry), entry["type"], entry["help"]) for name, entry in found.items()}


def _inspect(source: str, kernel: str, language: str) -> dict:
    import logging

    from papermill.translators import papermill_translators

    translator = papermill_translators.find_translator(kernel, language)
    logger = logging.getLogger("papermill")
    level = logger.level
    logger.setLevel(logging.ERROR)  # papermill warns about each line it skips; the rest still counts
    try:
        params = translator.inspect({"source": source})
    except NotImplementedError:
        return {}
    finally:
        logger.setLevel(level)
    found = {}
    for param in params:
        try:
            default = ast.literal_eval(param.default)
            literal = True
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            default, literal = None, False
        annotation = param.inferred_type_name.strip("'\"")
        type_name = type(default).__name__ if literal else _TYPE_NAMES.get(annotation.split("[")[0], "any")
        found[param.name] = {"default": default, "literal": literal, "type": type_name, "help": param.help}
    return found


def _default(entry: dict) -> Any:
    return entry["default"] if entry["literal"] else _MISSING


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlops-nb" / "parameters"


def _cached_on_disk(key: str) -> dict | None:
    try:
        return json.loads((_cache_dir() / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _store_on_disk(key: str, found: dict) -> dict:
    try:
        json.dumps(found)  # a default JSON cannot hold (a set, bytes) is read again next time
        folder = _cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(found), encoding="utf-8")
        os.replace(tmp, folder / f"{key}.json")
    except (OSError, TypeError, ValueError):
        pass  # a cache: without it we only read the cell again
    return found


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _kernel(nb: dict) -> str:
    return nb.get("metadata", {}).get("kernelspec", {}).get("name") or "python3"


def _language(nb: dict) -> str:
    metadata = nb.get("metadata", {})
    return metadata.get("kernelspec", {}).get("language") or metadata.get("language_info", {}).get("name") or "python"


# -- the values a kernel holds (for %%track) ------------------------------------------

def notebook_path(namespace: Mapping[str, Any], cwd: str | os.PathLike | None = None) -> Path | None:
    """The notebook a kernel runs, when the front end said: JupyterLab sets ``__session__``,
    papermill ``PAPERMILL_INPUT_PATH`` (with ``--inject-paths``)."""
    for key in ("PAPERMILL_INPUT_PATH", "__session__"):
        value = namespace.get(key)
        if isinstance(value, str) and value.endswith(".ipynb"):
            path = Path(value)
            if not path.is_absolute():
                path = Path(cwd or os.getcwd()) / path
            if path.exists():
                return path
            local = Path(cwd or os.getcwd()) / Path(value).name
            if local.exists():
                return local
    return None


def injected_names(history: Iterable[str]) -> list[str]:
    """Names set by papermill's injected-parameters cells found in a kernel's input history."""
    names: list[str] = []
    for source in history:
        if isinstance(source, str) and source.lstrip().startswith(INJECTED_HEADER):
            names.extend(n for n in parse_parameters(source) if n not in names)
    return names


def notebook_params(namespace: Mapping[str, Any], history: Iterable[str], cwd=None) -> dict[str, Any]:
    """The current values of the notebook's parameters: the ``parameters`` cell's names (when
    the notebook file is known) and any names papermill injected."""
    path = notebook_path(namespace, cwd)
    names = parameter_names(path) if path else []
    names += [n for n in injected_names(history) if n not in names]
    return {name: namespace[name] for name in names
            if name in namespace and not name.startswith("PAPERMILL_")}


def parse_overrides(items: list[str]) -> list[tuple[str | None, str, str]]:
    """``["C=0.5", "train.seed=1"]`` -> ``[(None, "C", "0.5"), ("train", "seed", "1")]``."""
    parsed = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParamError(f"-p takes NAME=VALUE or STEP.NAME=VALUE, got {item!r}")
        key = key.strip()
        step, _, name = key.rpartition(".")
        parsed.append((step or None, name, value))
    return parsed


def coerce(value: Any, declared: Declared, where: str) -> Any:
    """``value`` converted to the type of the notebook's default (text from a command line is parsed)."""
    kind = declared.type_name
    if value is None:  # `null` in YAML switches an optional value off, whatever its default's type
        return None
    if isinstance(value, str) and kind != "str":
        value = _parse_text(value, kind, declared, where)
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in ("any", "NoneType") or type(value).__name__ == kind:
        return value
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    raise ParamError(f"{where}: {value!r} is {_article(type(value).__name__)}, but the notebook's default "
                     f"{declared.default!r} is {_article(kind)}")


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _parse_text(text: str, kind: str, declared: Declared, where: str) -> Any:
    import yaml

    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            lowered = text.strip().lower()
            if lowered in ("true", "yes", "1", "on"):
                return True
            if lowered in ("false", "no", "0", "off"):
                return False
            raise ValueError(text)
        from mlops_nb.pipeline.safe_yaml import read_yaml

        return read_yaml(text, where)
    except (ValueError, yaml.YAMLError):
        raise ParamError(f"{where}: cannot use {text!r}: the notebook's default {declared.default!r} is "
                         f"{_article(kind)}") from None


def resolve_step_params(step_name: str, notebook: Path, declared: dict[str, Declared] | None,
                        pipeline_params: dict, step_params: dict,
                        overrides: list[tuple[str | None, str, str]]) -> dict[str, Any]:
    """The params a step runs with: pipeline < step < command line, checked and typed."""
    if declared is None:
        raise ParamError(f"step {step_name!r}: {notebook.name} has no cell tagged 'parameters'; add one "
                         "(in JupyterLab: select the cell, open the property inspector, add the tag) so the "
                         "notebook can take params")
    resolved: dict[str, Any] = {}
    # Pipeline params go only to steps that declare them.
    for name, value in pipeline_params.items():
        if name in declared:
            resolved[name] = coerce(value, declared[name], f"pipeline param {name!r} for step {step_name!r}")
    for name, value in step_params.items():
        _require(name, declared, step_name, notebook)
        resolved[name] = coerce(value, declared[name], f"step {step_name!r}, param {name!r}")
    for target, name, text in overrides:
        if target is None and name not in declared:
            continue  # a pipeline-wide -p applies to the steps that declare it
        if target is not None and target != step_name:
            continue
        _require(name, declared, step_name, notebook)
        resolved[name] = coerce(text, declared[name], f"-p {name}={text} for step {step_name!r}")
    return resolved


def _require(name: str, declared: dict[str, Declared], step_name: str, notebook: Path) -> None:
    if name not in declared:
        from mlops_nb.pipeline.spec import suggest

        raise ParamError(f"step {step_name!r}: {notebook.name} has no param {name!r}{suggest(name, declared)}; "
                         f"its parameters cell declares: {', '.join(declared) or 'nothing'}")


def plan_params(pipeline: Pipeline, overrides: list[tuple[str | None, str, str]]) -> dict[str, dict]:
    """Resolved params for every step; refuses overrides that no step (or no such step) takes."""
    names = [s.name for s in pipeline.steps]
    for target, name, _ in overrides:
        if target is not None and target not in names:
            raise ParamError(f"-p {target}.{name}: pipeline {pipeline.name!r} has no step {target!r}"
                             f"{suggest(target, names)}; its steps: {', '.join(names)}")
    declared = {s.name: declared_params(s.notebook) for s in pipeline.steps}
    planned = {s.name: resolve_step_params(s.name, s.notebook, declared[s.name], pipeline.params, s.params,
                                           overrides) for s in pipeline.steps}
    for target, name, _ in overrides:
        if target is None and not any(name in (d or {}) for d in declared.values()):
            known = sorted({n for d in declared.values() for n in (d or {})})
            raise ParamError(f"-p {name}: no step of pipeline {pipeline.name!r} declares a param {name!r}"
                             f"{suggest(name, known)}; declared: {', '.join(known) or 'none'}")
    return planned
