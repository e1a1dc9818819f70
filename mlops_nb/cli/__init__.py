"""The terminal face: ``mlops-nb runs|models|datasets|features|run|sweep|test|diff|triggers|watch|kernels|serve|init|demo``.

The root group and what commands share are in :mod:`mlops_nb.cli.base`; each
command group has its module, imported here to add its commands to ``cli``.
"""

from __future__ import annotations

from mlops_nb.cli import (datasets, delivery, features, kernels, models, pipelines, project, registry,  # noqa: F401
                          runs, serve, triggers)  # each registers its commands
from mlops_nb.cli.base import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli(prog_name="mlops-nb")

