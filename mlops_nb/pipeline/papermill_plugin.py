"""The class papermill's ``papermill.engine`` entry point names (``papermill --engine mlops-nb``).

papermill loads its entry points while it is itself being imported, so this module
must import nothing of ours at the top: it only defines the class, and the work is
done by :mod:`mlops_nb.pipeline.engine`.
"""

from papermill.engines import NBClientEngine


class MlopsEngine(NBClientEngine):
    @classmethod
    def execute_managed_notebook(cls, *args, **kwargs):
        from mlops_nb.pipeline.engine import MlopsEngine as Engine

        return Engine.execute_managed_notebook(*args, **kwargs)
