"""The one store: SQLite metadata plus content-addressed artifact files.

Knows nothing of notebooks, papermill or IPython; the layers above call these
functions with a :class:`Store` from :func:`open_store`.
"""

from mlops_nb.registry.home import find_home
from mlops_nb.registry.store import Store, open_store

__all__ = ["Store", "find_home", "open_store"]
