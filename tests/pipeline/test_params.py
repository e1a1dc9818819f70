"""The one reader of a notebook's parameters cell: papermill's own inspection, used by -p, %%track and REST."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_nb.cli import cli
from mlops_nb.errors import InvalidInputError
from mlops_nb.pipeline.params import declared_params, notebook_params, parse_parameters
from tests.notebooks_util import write_notebook

FILES = Path(__file__).parent / "files"


def test_complex_parameters_read_as_papermill_reads_them():
    from papermill import inspect_notebook

    declared = declared_params(FILES / "complex_parameters.ipynb")
    assert list(declared) == list(inspect_notebook(str(FILES / "complex_parameters.ipynb"))) == ["msg", "a", "b", "c"]
    assert (declared["a"].default, declared["a"].type_name, declared["a"].help) == (2.25, "float", "Variable a")
    assert declared["b"].default == ["Hello", "World"] and declared["b"].type_name == "list"
    assert declared["msg"].type_name == declared["c"].type_name == "NoneType"


def test_run_with_an_unknown_param_names_the_declared_ones(tmp_path, home, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    shutil.copy(FILES / "complex_parameters.ipynb", tmp_path / "notebooks" / "complex.ipynb")
    (tmp_path / "pipeline.yaml").write_text("name: complex\nsteps:\n  - name: c\n    notebook: notebooks/complex.ipynb\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run", "-p", "zz=1"])
    assert result.exit_code == 1
    assert "no step of pipeline 'complex' declares a param 'zz'; declared: a, b, c, msg" in result.output


def test_a_typed_param_takes_command_line_text_as_its_type():
    declared = parse_parameters("n: int = 3  # how many\nrate = 0.5\nname = 'x'\n")
    assert [(d.name, d.type_name) for d in declared.values()] == [("n", "int"), ("rate", "float"), ("name", "str")]
    assert declared["n"].help == "how many"


def test_track_and_run_agree_on_what_a_cell_declares(tmp_path):
    # `a, b = 1, 2` is no param for papermill (it cannot inject it), so for nobody here either.
    path = write_notebook(tmp_path / "nb.ipynb", ["x = 1"], parameters="a, b = 1, 2\nc = 3\nbroken = = 4\nd = 5")
    assert list(declared_params(path)) == ["c", "d"]
    namespace = {"a": 1, "b": 2, "c": 3, "d": 5, "__session__": str(path)}
    assert notebook_params(namespace, []) == {"c": 3, "d": 5}


def test_a_notebook_that_is_not_json_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    with pytest.raises(InvalidInputError, match=r"notebook .*bad.ipynb is not valid notebook JSON") as caught:
        declared_params(bad)
    assert "\n" not in str(caught.value)
    bad.write_text(json.dumps([1, 2]))
    with pytest.raises(InvalidInputError, match="is JSON but not a notebook"):
        declared_params(bad)


def test_the_cli_says_which_notebook_is_broken(tmp_path, home, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "step.ipynb").write_text('{"cells": [')
    (tmp_path / "pipeline.yaml").write_text("name: broken\nsteps:\n  - name: s\n    notebook: notebooks/step.ipynb\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 1
    assert "step.ipynb is not valid notebook JSON" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
