"""What a server's root holds: pipeline files are known by their content, not their names."""

from mlops_nb.project.scaffold import init_project
from mlops_nb.server.discover import find_pipelines
from mlops_nb.triggers.watch import watch_order


def test_every_pipeline_file_is_found_by_its_content(tmp_path):
    init_project(tmp_path / "churn")
    (tmp_path / "churn" / "settings.yaml").write_text("colour: blue\n")  # YAML, but no pipeline
    (tmp_path / "churn" / "notes.yml").write_text("steps: are written in pipeline files\n")
    found = find_pipelines(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["churn/pipeline.yaml", "churn/monitor.yaml"]


def test_the_monitor_is_checked_before_the_pipeline_it_feeds(tmp_path):
    init_project(tmp_path / "churn")
    order = watch_order([tmp_path / "churn" / "pipeline.yaml", tmp_path / "churn" / "monitor.yaml"])
    assert [p.name for p in order] == ["monitor.yaml", "pipeline.yaml"]
