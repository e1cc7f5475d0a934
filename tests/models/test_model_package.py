"""The package format: manifest contents, lineage from a run, and read_manifest's checks."""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import pytest

import ctloop
from ctloop.artifacts.blobstore import BlobStore
from ctloop.errors import IntegrityError, InvalidInput, NotFound
from ctloop.models import ModelManifest, load_package, read_manifest, write_package
from ctloop.models.package import MANIFEST_FILE


def test_write_package_records_everything_the_manifest_promises(
    tmp_path: Path, fitted: dict[str, Any], churn_xy: tuple[Any, Any]
) -> None:
    x, _ = churn_xy
    manifest = write_package(
        fitted["logreg"],
        tmp_path / "pkg",
        input_example=x,
        lineage={"run_id": "r1", "artifact_path": "model"},
        metadata={"owner": "churn-team"},
    )
    stored = json.loads((tmp_path / "pkg" / MANIFEST_FILE).read_text())
    assert stored == manifest.to_dict()
    assert stored["format_version"] == 1
    assert stored["flavor"] == "sklearn"
    assert stored["flavor_version"] == __import__("sklearn").__version__
    assert stored["model_class"] == "sklearn.pipeline.Pipeline"
    assert stored["python_version"] == platform.python_version()
    assert stored["created_at"].endswith("Z")
    assert {r.split("==")[0] for r in stored["requirements"]} >= {"scikit-learn", "skops", "numpy"}
    assert all("==" in r for r in stored["requirements"])
    assert stored["signature"]["output"] == {"kind": "probabilities", "classes": [0, 1]}
    assert [c["name"] for c in stored["signature"]["inputs"]] == list(x.columns)
    assert stored["lineage"]["run_id"] == "r1" and stored["lineage"]["inputs"] == []
    assert stored["metadata"] == {"owner": "churn-team"}
    # every file but the manifest, with its sha256
    assert set(stored["files"]) == {"model.skops", "input_example.json"}
    for name, digest in stored["files"].items():
        assert hashlib.sha256((tmp_path / "pkg" / name).read_bytes()).hexdigest() == digest
    rows = json.loads((tmp_path / "pkg" / "input_example.json").read_text())
    assert len(rows) == 5 and rows[0]["contract"] in ("month-to-month", "one-year", "two-year")


def test_manifest_json_round_trip(tmp_path: Path, fitted: dict[str, Any]) -> None:
    manifest = write_package(fitted["ridge"], tmp_path / "pkg")
    assert ModelManifest.from_json(manifest.to_json()) == manifest
    assert manifest.signature is None and manifest.parsed_signature() is None


@pytest.mark.parametrize(
    ("name", "flavor"),
    [("logreg", "sklearn"), ("hgb", "sklearn"), ("xgb", "xgboost"), ("lgbm", "lightgbm")],
)
def test_flavor_is_detected(tmp_path: Path, fitted: dict[str, Any], name: str, flavor: str) -> None:
    assert write_package(fitted[name], tmp_path / "pkg").flavor == flavor


def test_objects_with_predict_get_the_python_flavor(tmp_path: Path) -> None:
    class Constant:
        def predict(self, frame: Any) -> Any:
            return [1] * len(frame)

    assert write_package(Constant(), tmp_path / "pkg").flavor == "python"
    with pytest.raises(InvalidInput, match="no predict method"):
        write_package(object(), tmp_path / "other")


def test_an_explicit_flavor_must_fit_the_model(tmp_path: Path, fitted: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="the xgboost flavor cannot store"):
        write_package(fitted["logreg"], tmp_path / "pkg", flavor="xgboost")
    with pytest.raises(InvalidInput, match="unknown model flavor 'onnx'"):
        write_package(fitted["logreg"], tmp_path / "pkg2", flavor="onnx")


def test_write_package_refuses_a_non_empty_folder_and_non_json_metadata(
    tmp_path: Path, fitted: dict[str, Any]
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(InvalidInput, match="not empty"):
        write_package(fitted["ridge"], tmp_path / "full")
    with pytest.raises(InvalidInput, match="metadata must be JSON"):
        write_package(fitted["ridge"], tmp_path / "pkg", metadata={"when": object()})


def test_log_model_records_lineage_from_the_run(
    sqlite_client: Any, tmp_path: Path, fitted: dict[str, Any], churn_xy: tuple[Any, Any]
) -> None:
    x, y = churn_xy
    data = tmp_path / "train.parquet"
    x.assign(churned=y).to_parquet(data)
    version = sqlite_client.datasets.add(data, name="churn-train")
    with ctloop.start_run(experiment="churn", client=sqlite_client) as run:
        run.log_input(version)
        artifact = run.log_model(fitted["hgb"], input_example=x, metadata={"stage": "test"})
    assert artifact.path == "model" and artifact.kind == "dir"
    record = sqlite_client.runs.get(run.id)
    assert [(a.path, a.digest) for a in record.artifacts] == [("model", artifact.digest)]

    manifest = read_manifest(sqlite_client.blobs, artifact.digest)
    assert manifest.lineage["run_id"] == run.id
    assert manifest.lineage["artifact_path"] == "model"
    assert manifest.lineage["inputs"] == [
        {"dataset": "churn-train", "version": version.version, "digest": version.digest}
    ]
    assert manifest.lineage["git_commit"] == record.source.get("git_commit")
    assert manifest.metadata == {"stage": "test"}
    loaded = load_package(sqlite_client.blobs, artifact.digest)
    assert (loaded.predict(x) == fitted["hgb"].predict(x)).all()


def test_client_log_model_uses_the_given_name(sqlite_client: Any, fitted: dict[str, Any]) -> None:
    run = sqlite_client.runs.create("churn", capture_code=False)
    artifact = sqlite_client.runs.log_model(run.id, fitted["ridge"], name="models/ridge")
    assert artifact.path == "models/ridge"
    assert read_manifest(sqlite_client.blobs, artifact.digest).lineage["artifact_path"] == (
        "models/ridge"
    )
    with pytest.raises(InvalidInput):
        sqlite_client.runs.log_model(run.id, fitted["ridge"], name="../escape")


# --- read_manifest --------------------------------------------------------------------------


def _store(blobs: BlobStore, folder: Path) -> str:
    return blobs.put(folder).digest


def test_read_manifest_checks_files_against_the_folder(
    tmp_path: Path, blobs: BlobStore, fitted: dict[str, Any]
) -> None:
    pkg = tmp_path / "pkg"
    write_package(fitted["ridge"], pkg)
    assert read_manifest(blobs, _store(blobs, pkg)).flavor == "sklearn"

    # an extra file the manifest does not list
    (pkg / "smuggled.py").write_text("print('hi')")
    with pytest.raises(IntegrityError, match="'smuggled.py' is stored but not in the manifest"):
        read_manifest(blobs, _store(blobs, pkg))
    (pkg / "smuggled.py").unlink()

    # a manifest that records another digest for the model file
    manifest = ModelManifest.from_json((pkg / MANIFEST_FILE).read_bytes())
    manifest.files["model.skops"] = "0" * 64
    (pkg / MANIFEST_FILE).write_bytes(manifest.to_json())
    with pytest.raises(IntegrityError, match="'model.skops' has a different digest"):
        read_manifest(blobs, _store(blobs, pkg))


def test_read_manifest_of_something_else(tmp_path: Path, blobs: BlobStore) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "data.csv").write_text("a\n1\n")
    with pytest.raises(InvalidInput, match="has no ctloop-model.json"):
        read_manifest(blobs, _store(blobs, tmp_path / "plain"))
    with pytest.raises(InvalidInput, match="is a file, not a model package"):
        read_manifest(blobs, blobs.put_bytes(b"x").digest)
    with pytest.raises(NotFound):
        read_manifest(blobs, "a" * 64)


def test_manifest_paths_cannot_escape_the_package() -> None:
    raw = {
        "format_version": 1,
        "flavor": "sklearn",
        "flavor_version": "1",
        "model_class": "x",
        "signature": None,
        "requirements": [],
        "python_version": "3.11",
        "created_at": "2026-01-01T00:00:00Z",
        "files": {"../../etc/passwd": "0" * 64},
        "lineage": {},
        "metadata": {},
    }
    with pytest.raises(InvalidInput, match="'..' is not allowed"):
        ModelManifest.from_json(json.dumps(raw))
    raw["files"] = {"/abs": "0" * 64}
    with pytest.raises(InvalidInput, match="relative"):
        ModelManifest.from_json(json.dumps(raw))


def test_folder_paths_cannot_escape_the_package(blobs: BlobStore, tmp_path: Path) -> None:
    """A forged folder object naming ``../`` paths is refused before anything is written."""
    payload = blobs.put_bytes(b"payload").digest
    listing = json.dumps(
        [{"path": "../outside.txt", "sha256": payload, "size": 7}], separators=(",", ":")
    ).encode()
    digest = hashlib.sha256(listing).hexdigest()
    target = Path(blobs.url(digest, "dir"))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(listing)
    with pytest.raises(InvalidInput, match="'..' is not allowed"):
        load_package(blobs, digest)
    assert not (tmp_path / "outside.txt").exists()


def test_newer_format_versions_are_refused() -> None:
    with pytest.raises(InvalidInput, match="upgrade ctloop"):
        ModelManifest.from_json(json.dumps({"format_version": 2}))
