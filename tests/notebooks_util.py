"""Writing small real notebooks for tests."""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def write_notebook(path, cells, parameters=None):
    """``cells`` are code strings (a string starting with '# md' becomes markdown); ``parameters``
    is the source of a cell tagged `parameters`, placed first."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if parameters is not None:
        nb.cells.append(new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    for source in cells:
        nb.cells.append(new_markdown_cell(source[4:]) if source.startswith("# md") else new_code_cell(source))
    nbformat.write(nb, str(path))
    return path


def notebook_html(value) -> str:
    """The HTML a notebook shows for ``value``: IPython's own display formatter, with the formatters
    that ``import mlops_nb`` registers in a kernel."""
    from types import SimpleNamespace

    from IPython.core.formatters import DisplayFormatter

    from mlops_nb.show.notebook import register

    shell = SimpleNamespace(display_formatter=DisplayFormatter())  # what a kernel's shell holds
    register(shell)
    data, _ = shell.display_formatter.format(value)
    return data.get("text/html", "")
