"""Notebook pipelines: ``pipeline.yaml`` -> papermill steps, cached, recorded in the registry.

Import the pieces from their modules (``mlops_nb.pipeline.runner``, ``.spec``); this
package imports nothing itself, because a step's kernel imports ``mlops_nb`` and
must not pay for papermill and nbformat.
"""
