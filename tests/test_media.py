"""Figures, tables, images, text and dicts in runs: kept as files of their own kind, previewed where runs show."""

import io
import json

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - no screen here

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import mlops_nb as mlops
from mlops_nb.errors import InvalidInputError
from mlops_nb.registry.artifacts import blob_path
from mlops_nb.show.media import previews_html
from mlops_nb.show.views import RunView


def stored(run, name):
    artifact = mlops.get_run(run.id).artifacts[name]
    return artifact, blob_path(mlops.get_store().artifacts_dir, artifact["sha256"]).read_bytes()


def test_each_kind_is_kept_as_the_file_its_content_needs(home):
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [0, 1, 4])
    frame = pd.DataFrame({"age": [41, 35], "plan": ["pro", "free"], "score": [0.25, 0.75]})
    pixels = np.zeros((4, 6, 3), dtype=np.uint8)
    pixels[:, :3] = [255, 0, 0]
    with mlops.start_run() as run:
        names = [mlops.log_figure(fig, "curve"), mlops.log_figure(ax, "plots/curve.svg"),
                 mlops.log_table(frame, "customers"), mlops.log_image(pixels, "red-left"),
                 mlops.log_image(np.linspace(0, 1, 12).reshape(3, 4), "gray"),
                 mlops.log_text("all good\n", "notes"), mlops.log_dict({"C": 1.0, "classes": [0, 1]}, "config"),
                 mlops.log_dict({"C": 1.0}, "config.yaml")]
    assert names == ["curve.png", "plots/curve.svg", "customers.parquet", "red-left.png", "gray.png", "notes.txt",
                     "config.json", "config.yaml"]
    kinds = {n: a["kind"] for n, a in mlops.get_run(run.id).artifacts.items()}
    assert kinds == {"curve.png": "figure", "plots/curve.svg": "figure", "customers.parquet": "table",
                     "red-left.png": "image", "gray.png": "image", "notes.txt": "text", "config.json": "dict",
                     "config.yaml": "dict"}
    assert stored(run, "curve.png")[1][:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in stored(run, "plots/curve.svg")[1]
    table = pd.read_parquet(io.BytesIO(stored(run, "customers.parquet")[1]))
    pd.testing.assert_frame_equal(table, frame)  # the column types come back as they went
    image = np.asarray(Image.open(io.BytesIO(stored(run, "red-left.png")[1])))
    assert (image == pixels).all()
    gray = np.asarray(Image.open(io.BytesIO(stored(run, "gray.png")[1])))
    assert gray.shape == (3, 4) and gray[0, 0] == 0 and gray[-1, -1] == 255
    assert stored(run, "notes.txt")[1] == b"all good\n"
    assert json.loads(stored(run, "config.json")[1]) == {"C": 1.0, "classes": [0, 1]}
    assert stored(run, "config.yaml")[1] == b"C: 1.0\n"


def test_a_plotly_figure_is_kept_as_its_json(home):
    go = pytest.importorskip("plotly.graph_objects")
    figure = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2], name="loss"))
    with mlops.start_run() as run:
        assert mlops.log_figure(figure, "loss") == "loss.plotly.json"
    artifact, content = stored(run, "loss.plotly.json")
    assert artifact["kind"] == "figure" and json.loads(content)["data"][0]["name"] == "loss"


def test_an_image_file_is_kept_as_it_is(home, tmp_path):
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (5, 5), (0, 128, 0)).save(path)
    with mlops.start_run() as run:
        assert mlops.log_image(path, "samples/photo") == "samples/photo.jpg"
    assert stored(run, "samples/photo.jpg")[1] == path.read_bytes()


@pytest.mark.parametrize("call, message", [
    (lambda: mlops.log_figure([1, 2], "x"), "takes a matplotlib or plotly figure, got list"),
    (lambda: mlops.log_table({"a": [1]}, "x"), "takes a pandas DataFrame, got dict"),
    (lambda: mlops.log_image(np.zeros((2, 2, 2)), "x"), "got shape (2, 2, 2)"),
    (lambda: mlops.log_image(np.full((2, 2), 2.0), "x"), "values in [0, 1]"),
    (lambda: mlops.log_image(np.full((2, 2), 300), "x"), "values in 0-255"),
    (lambda: mlops.log_image("notes.txt", "x"), "takes an image file"),
    (lambda: mlops.log_text(b"bytes", "x"), "takes a str, got bytes"),
    (lambda: mlops.log_dict({"f": object()}, "x"), "keeps JSON values"),
    (lambda: mlops.log_dict({"nan": float("nan")}, "x"), "keeps JSON values"),
    (lambda: mlops.log_text("x", "../outside"), "contains '..'"),
])
def test_what_cannot_be_kept_is_a_one_line_error_and_stores_nothing(home, call, message):
    with mlops.start_run() as run:
        with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[").replace("]", r"\]")):
            call()
    assert mlops.get_run(run.id).artifacts == {}


def test_a_runs_previews_show_each_kind(home):
    fig, ax = plt.subplots()
    ax.bar(["a", "b"], [1, 2])
    with mlops.start_run() as run:
        mlops.log_figure(fig, "bars")
        mlops.log_table(pd.DataFrame({"n": range(25)}), "numbers")
        mlops.log_text("<b>not markup</b>", "notes")
        mlops.log_dict({"depth": 3}, "config")
        mlops.log_artifact(b"plain", "data.bin")  # a plain file: listed, not previewed
    found = mlops.get_run(run.id)
    html = previews_html(mlops.get_store().artifacts_dir, found)
    assert html.count('<figure class="mlops-media"') == 4 and "data.bin" not in html
    assert 'src="data:image/png;base64,' in html
    assert "25 rows x 1 columns; the first 10" in html and "<td>9</td>" in html and "<td>10</td>" not in html
    assert "&lt;b&gt;not markup&lt;/b&gt;" in html and "&quot;depth&quot;: 3" in html
    view = RunView(found, {"datasets": [], "models": [], "children": []}, {}, mlops.get_store().artifacts_dir)
    assert html in view._repr_html_()
    text = repr(view)  # the terminal's: each artifact with its kind and the path of its file
    path = blob_path(mlops.get_store().artifacts_dir, found.artifacts["bars.png"]["sha256"])
    assert "bars.png  figure, " in text and f"  {path}\n" in text


def test_track_figures_logs_what_the_cell_draws_and_ends_with(home):
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "mlops_nb")
    plt.close("all")
    cell = ("%%track drawn --figures\n"
            "import matplotlib.pyplot as plt\n"
            "fig, ax = plt.subplots(); ax.plot([1, 2]); ax.set_title('loss / epoch')\n"
            "other = plt.figure(); other.gca().hist([1, 2, 2])\n"
            "import plotly.graph_objects as go\n"
            "go.Figure(go.Bar(y=[1, 2]), layout={'title': {'text': 'counts'}})")
    assert shell.run_cell(cell).success
    kinds = {n: a["kind"] for n, a in mlops.get_run("drawn").artifacts.items()}
    assert kinds == {"loss-epoch.png": "figure", "figure-2.png": "figure", "counts.plotly.json": "figure"}
    plt.close("all")
    assert shell.run_cell("%%track plain\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])").success
    assert mlops.get_run("plain").artifacts == {}  # without --figures, none
    plt.close("all")
