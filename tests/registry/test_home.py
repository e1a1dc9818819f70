import pytest

from mlops_nb.errors import NotFoundError
from mlops_nb.registry.home import find_home
from mlops_nb.registry.store import Store


def test_home_is_found_in_a_parent_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("MLOPS_NB_HOME", raising=False)
    Store(tmp_path / ".mlops").close()
    deep = tmp_path / "notebooks" / "sub"
    deep.mkdir(parents=True)
    assert find_home(start=deep) == tmp_path / ".mlops"


def test_env_var_overrides_search(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_NB_HOME", str(tmp_path / "elsewhere"))
    assert find_home(start=tmp_path) == tmp_path / "elsewhere"


def test_without_registry_the_working_folder_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv("MLOPS_NB_HOME", raising=False)
    assert find_home(start=tmp_path) == tmp_path / ".mlops"


def test_must_exist_names_the_folder_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("MLOPS_NB_HOME", raising=False)
    with pytest.raises(NotFoundError, match=r"no mlops-nb registry .* log a run first, or pass --home"):
        find_home(start=tmp_path, must_exist=True)
