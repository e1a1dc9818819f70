"""`mlops-nb init`: a new project from a template in templates/, and synthetic data batches for it.

Templates generate their data (nothing is downloaded): :func:`write_batch` writes a
batch of customer rows, optionally shifted, as the data a team would receive.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mlops_nb.errors import InvalidInputError, NotFoundError

PACKAGE = Path(__file__).resolve().parent.parent
TEMPLATES = PACKAGE.parent / "templates"  # a source checkout; a wheel has them in mlops_nb/templates


def template_dir(name: str) -> Path:
    installed = PACKAGE / "templates" / name
    for folder in (installed, TEMPLATES / name):
        if folder.is_dir():
            return folder
    known = sorted(p.name for base in (installed.parent, TEMPLATES) if base.is_dir() for p in base.iterdir()
                   if p.is_dir())
    raise NotFoundError(f"no template {name!r}; templates: {', '.join(known) or 'none found'}")


def init_project(directory: str | Path, template: str = "tabular-classification", *, force: bool = False) -> list[Path]:
    """Copy a template into ``directory`` (refusing to overwrite unless ``force``) and write its first batch."""
    source = template_dir(template)
    target = Path(directory)
    files = [p for p in source.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts
             and "__pycache__" not in p.parts]
    clashes = [target / p.relative_to(source) for p in files if (target / p.relative_to(source)).exists()]
    if clashes and not force:
        raise InvalidInputError(f"{target} already has {', '.join(str(c.relative_to(target)) for c in clashes[:5])}; "
                                "pass --force to overwrite, or choose an empty folder")
    written = []
    try:
        for path in files:
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
            written.append(destination)
        (target / "data" / "incoming").mkdir(parents=True, exist_ok=True)
        # A template with feature views gets customers with keys and times (their values go to a view).
        written.append(write_batch(target / "data" / "incoming" / "batch-001.csv", n_rows=3000, seed=1,
                                   keyed=(source / "features.yaml").is_file()))
    except OSError as exc:
        raise InvalidInputError(f"cannot make the project in {target}: {exc.strerror or exc} "
                                f"({exc.filename or target}); choose a folder you can write to") from None
    return written


def write_project_config(directory: str | Path, registry: str, artifacts: str | None = None) -> Path:
    """``mlops-nb.yaml``: the team registry every command, notebook and trigger in the project uses. A password
    in the URL is left out (credentials are never written down: PGPASSWORD or ~/.pgpass hold them)."""
    from mlops_nb.registry.home import CONFIG_NAME, strip_password

    url = strip_password(registry)
    if not url.startswith(("postgresql://", "postgres://")):
        raise InvalidInputError(f"--registry {url!r}: give a postgresql://user@host:port/db URL")
    lines = ["# mlops-nb project settings: where the team's registry is (see the README's team section).",
             f"registry: {url}"]
    if artifacts:
        lines.append(f"artifacts: {Path(artifacts).expanduser().resolve()}")
    path = Path(directory) / CONFIG_NAME
    path.write_text("\n".join(lines) + "\n")
    return path


def write_batch(path: str | Path, *, n_rows: int = 1000, seed: int = 0, shift: float = 0.0,
                concept: float = 0.0, keyed: bool = False, at=None) -> Path:
    """Write a batch of synthetic customers (:func:`customer_batch`) as CSV.

    Batches for each trigger of the template: a plain one (``new_data``), ``shift=1`` (``drift``),
    ``concept=1`` (the monitor's score, so ``performance``); ``schedule`` needs only time. ``keyed`` adds
    each row's ``customer_id`` and ``event_time`` (during the day before ``at``, default now), for a
    template whose customers' values live in a feature view."""
    frame = customer_batch(n_rows=n_rows, seed=seed, shift=shift, concept=concept)
    if keyed:
        frame = with_keys(frame, seed=seed, at=at)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def with_keys(frame, *, seed: int = 0, at=None, customers: int = 20_000):
    """``frame`` with a ``customer_id`` per row (drawn from ``customers``, so customers come back in later
    batches with new values) and the ``event_time`` its values were seen, in the day before ``at``."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(10_000 + seed)
    end = (pd.Timestamp.now(tz="UTC").tz_localize(None) if at is None else pd.Timestamp(at)).floor("s")
    ids = rng.choice(customers, size=len(frame), replace=len(frame) > customers)
    times = end - pd.to_timedelta(np.sort(rng.integers(1, 86_400, len(frame)))[::-1], unit="s")
    return pd.concat([pd.DataFrame({"customer_id": ids, "event_time": times}), frame], axis=1)


def customer_batch(*, n_rows: int = 1000, seed: int = 0, shift: float = 0.0, concept: float = 0.0):
    """Synthetic customers with a churn label; ``shift`` moves the distribution (older, heavier users on
    pricier plans) the way new data drifts; ``concept`` (0 to 1) changes why customers churn while they look
    the same (long-standing customers leave, support keeps people): no drift in the data, but the production
    model's accuracy falls."""
    import numpy as np
    import pandas as pd

    if n_rows < 1:
        raise InvalidInputError(f"a batch needs at least one row, got {n_rows}")
    rng = np.random.default_rng(seed)
    age = rng.normal(40 + 12 * shift, 11, n_rows).clip(18, 90).round()
    tenure = rng.exponential(24 * (1 - 0.5 * shift) + 1, n_rows).round(1)
    support = rng.poisson(1 + 2 * shift, n_rows)
    plan = rng.choice(["basic", "plus", "pro"], n_rows, p=[0.5 - 0.3 * shift, 0.3, 0.2 + 0.3 * shift])
    # Charges follow the plan, plus usage that grows with support calls and the shift.
    base = np.select([plan == "basic", plan == "plus"], [20.0, 45.0], 80.0)
    monthly = (base + 2.5 * support + rng.gamma(2 + shift, 6, n_rows)).round(2)
    region = rng.choice(["north", "south", "east", "west"], n_rows)
    sign = 1 - 2 * concept  # the relationship between the features and churning turns around
    logit = -1.2 + sign * (0.04 * support * 6 - 0.05 * tenure + 0.012 * monthly + (plan == "basic") * 0.6 - 0.6)
    logit += 0.6
    churned = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"age": age, "tenure_months": tenure, "monthly_charges": monthly, "support_calls": support,
                         "plan": plan, "region": region, "churned": churned})
