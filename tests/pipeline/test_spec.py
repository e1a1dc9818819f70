import textwrap

import pytest

from mlops_nb.errors import NotFoundError
from mlops_nb.pipeline.params import ParamError, parse_overrides
from mlops_nb.pipeline.params import plan_params
from mlops_nb.pipeline.spec import SpecError, load_pipeline, order_steps
from tests.notebooks_util import write_notebook


def write(project, text):
    (project / "pipeline.yaml").write_text(textwrap.dedent(text))
    return project / "pipeline.yaml"


def test_steps_are_ordered_by_files_and_step_names(project):
    pipeline = load_pipeline(project / "pipeline.yaml")
    assert [s.name for s in order_steps(pipeline)] == ["prepare", "train", "report", "evaluate"]
    assert pipeline.upstream(pipeline.step("train")) == ["prepare"]  # through data/prepared.csv
    assert pipeline.upstream(pipeline.step("evaluate")) == ["train"]


@pytest.mark.parametrize("text, message", [
    ("name: x\nsteps:\n  - name: a\n    notebok: notebooks/train.ipynb\n",
     "pipeline.yaml: step 'a': unknown field 'notebok' (did you mean 'notebook'?)"),
    ("name: x\nsteps:\n  - name: a\n    notebook: notebooks/trian.ipynb\n",
     "step 'a', field 'notebook': notebooks/trian.ipynb does not exist (did you mean 'notebooks/train.ipynb'?)"),
    ("name: x\nstep: []\n", "unknown field 'step' (did you mean 'steps'?)"),
    ("name: x\nsteps:\n  - name: a\n    notebook: notebooks/train.ipynb\n    retries: -1\n",
     "step 'a', field 'retries': expected a whole number >= 0"),
    ("name: x\nsteps:\n  - name: a\n    notebook: notebooks/train.ipynb\n    timeout: {cel: 3}\n",
     "field 'timeout': unknown field 'cel' (did you mean 'cell'?)"),
    ("name: x\nsteps:\n  - name: a\n    notebook: notebooks/train.ipynb\n  - name: a\n"
     "    notebook: notebooks/train.ipynb\n", "step name 'a' is used twice"),
    ("name: x\nsteps:\n  - name: a\n    notebook: notebooks/train.ipynb\n    after: [b]\n"
     "  - name: b\n    notebook: notebooks/train.ipynb\n    after: [a]\n", "depend on each other in a cycle"),
    ("name: x\nsteps:\n  - name: a\n    notebook: notebooks/train.ipynb\n    after: [prep]\n",
     "field 'after': no step 'prep'"),
    ("name: x\nsteps: [\n", "pipeline.yaml line 3: not valid YAML"),
    ("name: x\nsteps:\n  - name: a\n    notebook: notebooks/train.ipynb\n    after: [a]\n",
     "step 'a' cannot wait for itself ('a' in its after)"),
    ("name: x\nparams: {n: " + "9" * 5000 + "}\nsteps: []\n", "a number is too long (over 4,300 digits)"),
    ("name: x\nparams: {n: " + "[" * 5000 + "]" * 5000 + "}\nsteps: []\n", "nests too deeply to read"),
    ("name: x\nparams:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"  {chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
     + "steps: []\n", "its aliases (*name) stand for more than 100,000 values"),
    ("name: x\nparams: &p {a: *p}\nsteps: []\n", "an alias (*name) refers to the value it is part of"),
    ("name: x\nexecutor: dusk\nsteps:\n  - name: a\n    notebook: notebooks/train.ipynb\n",
     "field 'executor': expected local, dask or a Dask scheduler's address tcp://HOST:PORT, got 'dusk'"),
    ("name: x\nsteps:\n  - name: a\n    notebook: notebooks/train.ipynb\n    resources: {memory: lots}\n",
     "step 'a', field 'resources': 'memory' must be a size such as 4GiB or 512MB, got 'lots'"),
    ("name: x\nsteps:\n  - name: a\n    notebook: notebooks/train.ipynb\n    resources: {gpu: -1}\n",
     "step 'a', field 'resources': 'gpu' must be a number > 0, e.g. 1, got -1"),
])
@pytest.mark.timeout(30)  # a billion laughs used to run for minutes
def test_spec_errors_name_file_step_and_field(project, text, message):
    import gc

    gc.collect()  # what earlier tests left is finalized here, not at the parser's deepest recursion
    with pytest.raises(SpecError) as info:
        load_pipeline(write(project, text))
    assert message in str(info.value)


def test_resources_and_executor_are_read(project):
    pipeline = load_pipeline(write(project, "name: x\nexecutor: tcp://10.0.0.5:8786\nsteps:\n  - name: a\n"
                                            "    notebook: notebooks/train.ipynb\n    resources: {memory: 4GiB, gpu: 1}\n"))
    assert pipeline.executor == "tcp://10.0.0.5:8786"
    assert pipeline.step("a").resources == {"memory": 4 * 2 ** 30, "gpu": 1.0}


def test_missing_pipeline_file_says_so(tmp_path):
    with pytest.raises(NotFoundError, match="no pipeline file"):
        load_pipeline(tmp_path / "nope.yaml")


def test_cli_params_are_typed_by_the_notebooks_defaults(project):
    pipeline = load_pipeline(project / "pipeline.yaml")
    planned = plan_params(pipeline, parse_overrides(["C=0.5", "prepare.limit=7", "title=monthly"]))
    assert planned["train"] == {"C": 0.5}
    assert planned["prepare"] == {"limit": 7}
    assert planned["report"] == {"title": "monthly"}
    assert planned["evaluate"] == {}


@pytest.mark.parametrize("overrides, message", [
    (["train.CC=1"], "step 'train': train.ipynb has no param 'CC' (did you mean 'C'?); its parameters cell "
                     "declares: C, max_iter"),
    (["C=abc"], "cannot use 'abc': the notebook's default 0.1 is a float"),
    (["prepare.limit=1.5"], "cannot use '1.5': the notebook's default 10 is an int"),
    (["trian.C=1"], "has no step 'trian' (did you mean 'train'?)"),
    (["nothing=1"], "no step of pipeline 'churn' declares a param 'nothing'"),
    (["C"], "-p takes NAME=VALUE"),
])
def test_bad_params_are_refused_before_anything_runs(project, overrides, message):
    pipeline = load_pipeline(project / "pipeline.yaml")
    with pytest.raises(ParamError) as info:
        plan_params(pipeline, parse_overrides(overrides))
    assert message in str(info.value)


def test_step_params_in_yaml_are_checked_too(project):
    write(project, "name: x\nsteps:\n  - name: t\n    notebook: notebooks/train.ipynb\n    params: {C: 'high'}\n")
    with pytest.raises(ParamError, match="step 't', param 'C': cannot use 'high': the notebook's default 0.1 is a float"):
        plan_params(load_pipeline(project / "pipeline.yaml"), [])


def test_null_in_yaml_switches_a_param_off(project):
    write(project, "name: x\nsteps:\n  - name: t\n    notebook: notebooks/train.ipynb\n    params: {C: null}\n")
    assert plan_params(load_pipeline(project / "pipeline.yaml"), [])["t"] == {"C": None}


def test_notebook_without_parameters_cell_cannot_be_a_step(project):
    write_notebook(project / "notebooks" / "plain.ipynb", ["x = 1"])
    write(project, "name: x\nsteps:\n  - name: p\n    notebook: notebooks/plain.ipynb\n")
    with pytest.raises(ParamError, match="has no cell tagged 'parameters'; add one"):
        plan_params(load_pipeline(project / "pipeline.yaml"), [])
