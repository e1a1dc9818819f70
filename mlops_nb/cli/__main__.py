"""``python -m mlops_nb.cli``: the same as ``mlops-nb``."""

from mlops_nb.cli import main

main()
