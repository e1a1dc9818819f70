"""Search spaces, and the three ways a sweep walks one: every grid point, random points, Optuna's.

A space names the notebook's params and what each may be, in YAML (``mlops-nb sweep --space``)::

    C: {log_uniform: [0.001, 100]}      # a float, evenly spread in log scale
    l1_ratio: {uniform: [0, 1]}
    n_estimators: {int: [10, 300]}       # {int: [1, 1000], log: true} for a log scale
    model: {choice: [logreg, forest]}
    max_depth: [3, 5, 8]                 # a plain list is a choice
    seed: 0                              # one value: fixed

A grid takes every choice and ``points`` (default 3) evenly spread values of each range
(``{uniform: [0, 1], points: 5}``); random and Optuna sample the ranges themselves. Values
are checked against the notebook's parameters cell and converted to its defaults' types.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_nb.pipeline.params import Declared, ParamError, coerce
from mlops_nb.pipeline.spec import suggest

SEARCHES = ("grid", "random", "optuna")
RANGES = ("uniform", "log_uniform", "int")


@dataclass(frozen=True)
class Dimension:
    """One param of a search space: a choice of values, or a range."""

    name: str
    kind: str                 # choice | uniform | log_uniform | int
    values: tuple = ()        # for choice
    low: float = 0.0
    high: float = 0.0
    log: bool = False         # int on a log scale
    points: int = 3           # how many values of a range a grid takes

    def grid(self) -> list:
        if self.kind == "choice":
            return list(self.values)
        if self.points == 1:
            return [self._cast((self.low + self.high) / 2)]
        if self.kind == "log_uniform" or self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            values = [math.exp(lo + (hi - lo) * i / (self.points - 1)) for i in range(self.points)]
        else:
            values = [self.low + (self.high - self.low) * i / (self.points - 1) for i in range(self.points)]
        return list(dict.fromkeys(self._cast(v) for v in values))

    def sample(self, rng: random.Random) -> Any:
        if self.kind == "choice":
            return rng.choice(self.values)
        if self.kind == "log_uniform" or self.log:
            return self._cast(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        if self.kind == "int":
            return rng.randint(int(self.low), int(self.high))
        return rng.uniform(self.low, self.high)

    def suggest(self, trial) -> Any:
        """Optuna's proposal for this param in ``trial``."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.values))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "log_uniform")

    def _cast(self, value: float) -> Any:
        if self.kind == "int":
            return int(round(value))
        return float(f"{value:.6g}")  # grid values people can read: 0.0316228, not 0.031622776601683784


def parse_space(raw: Any, declared: dict[str, Declared], source: str) -> list[Dimension]:
    """A space from its YAML form (or a dict of value lists, as ``-p C=0.1,1`` gives), checked against
    the notebook's ``declared`` params."""
    if not isinstance(raw, dict) or not raw:
        raise ParamError(f"{source}: a search space maps param names to values or ranges, e.g. "
                         "C: {log_uniform: [0.001, 100]}")
    space = []
    for name, spec in raw.items():
        name = str(name)
        if name not in declared:
            raise ParamError(f"{source}: the notebook has no param {name!r}{suggest(name, declared)}; its "
                             f"parameters cell declares: {', '.join(declared) or 'nothing'}")
        space.append(_dimension(name, spec, declared[name], f"{source}: {name}"))
    return space


def _dimension(name: str, spec: Any, declared: Declared, where: str) -> Dimension:
    if isinstance(spec, (list, tuple)):
        spec = {"choice": list(spec)}
    if not isinstance(spec, dict):
        spec = {"choice": [spec]}
    kinds = [k for k in spec if k in ("choice", *RANGES)]
    unknown = [k for k in spec if k not in ("choice", *RANGES, "points", "log")]
    if len(kinds) != 1 or unknown:
        raise ParamError(f"{where}: give one of choice, uniform, log_uniform or int (and optionally points, "
                         f"log), got {', '.join(map(str, spec)) or 'nothing'}")
    kind = kinds[0]
    points = spec.get("points", 3)
    if not isinstance(points, int) or isinstance(points, bool) or points < 1:
        raise ParamError(f"{where}: points must be a whole number of at least 1, got {points!r}")
    if kind == "choice":
        values = spec["choice"] if isinstance(spec["choice"], (list, tuple)) else [spec["choice"]]
        if not values:
            raise ParamError(f"the sweep of {name!r} has no values: give at least one")
        return Dimension(name, "choice", tuple(coerce(v, declared, f"{name}={v}") for v in values))
    bounds = spec[kind]
    if (not isinstance(bounds, (list, tuple)) or len(bounds) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)):
        raise ParamError(f"{where}: {kind} takes [low, high] numbers, e.g. {{{kind}: [1, 10]}}, got {bounds!r}")
    low, high = bounds
    log = bool(spec.get("log", False))
    if not low < high:
        raise ParamError(f"{where}: low must be below high, got [{low}, {high}]")
    if (kind == "log_uniform" or log) and low <= 0:
        raise ParamError(f"{where}: a log scale needs a low above 0, got {low}")
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise ParamError(f"{where}: int takes whole-number bounds, got [{low}, {high}]")
    probe = int(low) if kind == "int" else float(low)
    coerce(probe, declared, f"{name} ({kind})")  # the notebook's default must be that kind of number
    return Dimension(name, kind, low=float(low), high=float(high), log=log, points=points)


def load_space(path: str | Path, declared: dict[str, Declared]) -> list[Dimension]:
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamError(f"search space file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ParamError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse_space(raw, declared, str(path))


def grid_points(space: list[Dimension]) -> list[dict]:
    return [dict(zip([d.name for d in space], values)) for values in itertools.product(*(d.grid() for d in space))]


def random_points(space: list[Dimension], trials: int, seed: int | None) -> list[dict]:
    rng = random.Random(seed)
    return [{d.name: d.sample(rng) for d in space} for _ in range(trials)]
