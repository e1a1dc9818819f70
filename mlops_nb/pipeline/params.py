"""Which params a step takes, and the values it gets.

A notebook's params are the names its ``parameters`` cell assigns, with their
defaults. Values come from the pipeline, then the step, then the command line
(``-p C=0.5`` for every step that declares C, ``-p train.C=0.5`` for one step).
A name the notebook does not declare is an error listing the ones it does;
command-line text is converted to the type of the notebook's default.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_nb.errors import InvalidInputError
from mlops_nb.notebook import PARAMETERS_TAG
from mlops_nb.pipeline.spec import Pipeline, suggest

_MISSING = object()


class ParamError(InvalidInputError):
    """A param is unknown to a notebook or cannot take the value given."""


@dataclass(frozen=True)
class Declared:
    name: str
    default: Any               # _MISSING when not a literal
    type_name: str             # int, float, str, bool, NoneType, list, dict, or "any"


def declared_params(notebook: str | Path) -> dict[str, Declared] | None:
    """The params of a notebook's ``parameters`` cell; None when it has no such cell."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells", [])
    for cell in cells:
        if cell.get("cell_type") == "code" and PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            source = cell.get("source", "")
            return _parse_cell("".join(source) if isinstance(source, list) else source)
    return None


def _parse_cell(source: str) -> dict[str, Declared]:
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return {}
    found: dict[str, Declared] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        try:
            default = ast.literal_eval(value)
            type_name = type(default).__name__
        except (ValueError, SyntaxError, TypeError):
            default, type_name = _MISSING, "any"
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = Declared(target.id, default, type_name)
    return found


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
        return yaml.safe_load(text)
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
