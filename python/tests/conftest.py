"""Shared fixtures: the repository's sample collection, the real models of the cache
(scripts/setup-models.sh prepares them), and one sample index per test session."""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

import optical

REPO = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "sample"


def model(name: str) -> pathlib.Path:
    """A model directory of the cache; the test fails (it does not skip) when it is missing:
    scripts/test.sh prepares the models before it runs the tests."""
    path = pathlib.Path(optical.models_dir()) / name
    assert (path / "config.json").is_file(), f"model {path} is missing: run scripts/setup-models.sh"
    return path


@pytest.fixture(scope="session")
def e5() -> pathlib.Path:
    return model("multilingual-e5-small")


@pytest.fixture(scope="session")
def student() -> pathlib.Path:
    return model("students/multilingual")


@pytest.fixture(scope="session")
def sample_queries():
    with open(SAMPLE / "queries.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory, e5) -> pathlib.Path:
    """The sample's 450 English passages indexed with multilingual-e5-small, as
    scripts/demo.sh does (`optical index --lang eng --model e5`), through the package.

    With $OPTICAL_TEST_SAMPLE_INDEX (scripts/test-python.sh sets it), the index is built there
    by the first pytest run and reused by the runs in the Milvus and Ray venvs; tests open it
    read-only."""
    shared = os.environ.get("OPTICAL_TEST_SAMPLE_INDEX")
    path = pathlib.Path(shared) if shared else tmp_path_factory.mktemp("sample") / "index"
    done = path.parent / (path.name + ".complete")
    if not done.exists():
        if path.exists():
            shutil.rmtree(path)
        report = optical.ingest(str(path), str(SAMPLE / "corpus.jsonl"), model=str(e5), lang="eng")
        assert report["added"] == 450 and report["docs"] == 450, report
        # int8 where the CPU has a fast kernel (VNNI or AMX), as the library's default.
        assert report["precision"] == "f32" or report["precision"].startswith("int8 ("), report
        done.write_text("ok\n")
    return path


@pytest.fixture(scope="session")
def optical_bin() -> pathlib.Path:
    """The `optical` CLI that scripts/test-python.sh builds ($OPTICAL_BIN)."""
    path = os.environ.get("OPTICAL_BIN") or shutil.which("optical")
    if not path or not os.path.isfile(path):
        pytest.skip("SKIPPED: no optical CLI ($OPTICAL_BIN unset; scripts/test-python.sh sets it)")
    return pathlib.Path(path)


def run_cli(binary, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=600)
