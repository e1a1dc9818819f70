"""Serving: the model behind an alias answers HTTP prediction requests and follows the alias as it moves.

``mlops-nb serve churn`` (see :mod:`mlops_nb.serving.app`); needs the ``serve`` extra
(``pip install 'mlops-nb[serve]'``: Starlette and uvicorn).
"""
