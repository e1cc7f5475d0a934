"""``ctloop build``: the context it writes, what it refuses, and its entrypoint run for real.

There is no Docker engine here, so the slow test does what the Dockerfile does by hand:
a fresh virtual environment gets the context's ``requirements.txt`` (ctloop itself from
this checkout, since it is not on the package index), then the Dockerfile's ENTRYPOINT runs
against the context's ``model/`` folder and answers predictions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

import ctloop
from ctloop.errors import IntegrityError, InvalidInput, NotFound
from ctloop.serving.build import build_context, kubernetes_name

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def churn() -> tuple[Any, Any]:
    """A fitted classifier and the frame it was trained on."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame(
        {"age": [22, 35, 47, 58, 29, 63], "spend": [9.5, 20.0, 31.0, 48.5, 12.0, 55.0]}
    )
    return LogisticRegression().fit(frame, [0, 0, 1, 1, 0, 1]), frame


@pytest.fixture
def store(tmp_path: Path, churn: tuple[Any, Any]) -> Path:
    """A store with model 'churn' versions 1 and 2 (champion on 2), deployment 'churn-api'."""
    model, frame = churn
    path = tmp_path / "store"
    with ctloop.Client(store=str(path)) as client:
        for _ in range(2):
            with ctloop.start_run(experiment="churn", client=client) as run:
                run.log_model(model, input_example=frame)
            client.models.register(run.id, name="churn")
        client.models.set_alias("churn", "champion", 2)
        client.deployments.create("churn-api", "churn@champion")
    return path


@pytest.fixture
def client(store: Path) -> Any:
    with ctloop.Client(store=str(store)) as c:
        yield c


def ctl(*args: str | Path, store: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CTLOOP_STORE": str(store)}
    return subprocess.run(
        [sys.executable, "-m", "ctloop", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def fails(*args: str | Path, store: Path) -> str:
    """Run a command that must fail with one ``error:`` line and no traceback."""
    out = ctl(*args, store=store)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr and out.stderr.startswith("error: "), out.stderr
    assert out.stderr.strip().count("\n") == 0, out.stderr
    return out.stderr


def dockerfile_instruction(dockerfile: str, keyword: str) -> str:
    """The argument of the (last) ``keyword`` instruction, continuation lines joined."""
    joined = dockerfile.replace("\\\n", " ")
    found = [
        line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(f"{keyword} ")
    ]
    assert found, f"no {keyword} in the Dockerfile"
    return found[-1]


def test_build_of_a_model_ref_writes_a_complete_context(
    client: Any, tmp_path: Path, churn: tuple[Any, Any]
) -> None:
    from ctloop.models.loading import load_package_dir
    from ctloop.models.package import ModelManifest

    model, frame = churn
    out = tmp_path / "ctx"
    result = build_context(client, "churn@champion", out)

    version = client.models.resolve("churn/2")
    assert (result.model, result.version, result.name) == ("churn", 2, "churn")
    assert result.deployment is None and result.image == "churn:v2"
    assert result.package_digest == version.package_digest
    expected = {
        ".dockerignore", "Dockerfile", "README.md", "build.json", "requirements.txt",
        "k8s/deployment.yaml", "k8s/service.yaml", "k8s/inferenceservice.yaml",
        "model/ctloop-model.json", "model/input_example.json", "model/model.skops",
        "wheels/README.txt",
    }  # fmt: skip
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == expected and set(result.files) == expected

    # the package is byte for byte the registered one: it loads and predicts the same
    manifest = ModelManifest.from_json((out / "model" / "ctloop-model.json").read_bytes())
    loaded = load_package_dir(out / "model", manifest)
    assert loaded.predict(frame).tolist() == model.predict(frame).tolist()

    requirements = (out / "requirements.txt").read_text().splitlines()
    assert requirements == [*manifest.requirements, f"ctloop[server]=={ctloop.__version__}"]
    assert any(r.startswith("scikit-learn==") for r in requirements)

    dockerfile = (out / "Dockerfile").read_text()
    major_minor = ".".join(manifest.python_version.split(".")[:2])
    assert dockerfile_instruction(dockerfile, "FROM") == f"python:{major_minor}-slim"
    user = dockerfile_instruction(dockerfile, "USER")
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) != 0
    assert dockerfile_instruction(dockerfile, "EXPOSE") == "8080"
    healthcheck = dockerfile_instruction(dockerfile, "HEALTHCHECK")
    assert "/v2/health/ready" in healthcheck and "urllib" in healthcheck
    assert json.loads(dockerfile_instruction(dockerfile, "ENTRYPOINT")) == [
        "ctloop", "serve", "/app/model", "--name", "churn", "--host", "0.0.0.0", "--port", "8080",
    ]  # fmt: skip
    assert "-r /tmp/build/requirements.txt" in dockerfile
    assert "CTLOOP_STORE=/var/lib/ctloop/store" in dockerfile

    built = json.loads((out / "build.json").read_text())
    assert built["target"] == "churn@champion" and built["model"] == "churn"
    assert built["version"] == 2 and built["package_digest"] == version.package_digest
    assert built["ctloop_version"] == ctloop.__version__

    readme = (out / "README.md").read_text()
    assert "docker build -t churn:v2 ." in readme and "kubectl apply" in readme


def test_kubernetes_manifests_parse_and_probe_the_oip_health_endpoints(
    client: Any, tmp_path: Path
) -> None:
    out = tmp_path / "ctx"
    build_context(client, "churn/1", out, image="registry.example/churn:1")
    docs = {
        path.name: list(yaml.safe_load_all(path.read_text()))
        for path in sorted((out / "k8s").glob("*.yaml"))
    }
    [deployment] = docs["deployment.yaml"]
    assert (deployment["apiVersion"], deployment["kind"]) == ("apps/v1", "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    assert container["image"] == "registry.example/churn:1"
    assert container["ports"][0]["containerPort"] == 8080
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["securityContext"]["runAsNonRoot"] is True
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()

    [service] = docs["service.yaml"]
    assert (service["apiVersion"], service["kind"]) == ("v1", "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"

    runtime, isvc = docs["inferenceservice.yaml"]
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    predictor = isvc["spec"]["predictor"]["model"]
    assert predictor["protocolVersion"] == "v2"
    assert (runtime["kind"], runtime["metadata"]["name"]) == (
        "ServingRuntime",
        predictor["runtime"],
    )
    assert runtime["spec"]["protocolVersions"] == ["v2"]
    [served] = runtime["spec"]["containers"]
    assert served["image"] == "registry.example/churn:1"
    assert served["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert isvc["metadata"]["annotations"]["ctloop.dev/model"] == "churn/1"


def test_build_of_a_deployment_serves_its_one_version_under_its_name(
    client: Any, tmp_path: Path
) -> None:
    result = build_context(client, "churn-api", tmp_path / "ctx")
    assert (result.deployment, result.name, result.model, result.version) == (
        "churn-api",
        "churn-api",
        "churn",
        2,
    )
    entrypoint = dockerfile_instruction((tmp_path / "ctx" / "Dockerfile").read_text(), "ENTRYPOINT")
    assert json.loads(entrypoint)[3:5] == ["--name", "churn-api"]


def test_build_keeps_a_deployment_that_logs_no_payloads_from_logging(
    client: Any, tmp_path: Path
) -> None:
    client.deployments.create("quiet-api", "churn/1", log_payloads=False)
    result = build_context(client, "quiet-api", tmp_path / "ctx")
    assert result.entrypoint[-1] == "--no-log-payloads"
    entrypoint = dockerfile_instruction((tmp_path / "ctx" / "Dockerfile").read_text(), "ENTRYPOINT")
    assert json.loads(entrypoint) == result.entrypoint


class Constant:
    """A model of the ``python`` flavor (cloudpickle: loading it runs code)."""

    def predict(self, rows: Any) -> list[int]:
        return [1] * len(rows)


def test_build_of_a_python_flavor_package_needs_trust(client: Any, tmp_path: Path) -> None:
    from ctloop.errors import PermissionDenied

    run = client.runs.create("custom", capture_code=False)
    client.runs.log_model(run.id, Constant(), "model", flavor="python")
    client.models.register(run.id, name="custom")
    with pytest.raises(PermissionDenied, match="--trust"):
        build_context(client, "custom/1", tmp_path / "ctx")
    assert not (tmp_path / "ctx").exists()
    result = build_context(client, "custom/1", tmp_path / "ctx", trust=True)
    assert "--trust" in result.entrypoint


def test_build_refuses_a_deployment_that_splits_traffic(client: Any, tmp_path: Path) -> None:
    client.deployments.set_traffic("churn-api", {2: 90, 1: 10})
    with pytest.raises(InvalidInput) as caught:
        build_context(client, "churn-api", tmp_path / "ctx")
    message = str(caught.value)
    assert "churn/2 (90%" in message and "churn/1 (10%" in message
    assert "ctloop build churn/2 --name churn-api" in message
    assert not (tmp_path / "ctx").exists()


def test_build_names_an_unknown_target_and_how_to_list_them(client: Any, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no deployment or registered model named 'nope'.*"
                       "ctloop deployments list.*ctloop models list"):  # fmt: skip
        build_context(client, "nope", tmp_path / "ctx")
    with pytest.raises(NotFound, match="churn.*version 7"):
        build_context(client, "churn/7", tmp_path / "ctx")
    with pytest.raises(InvalidInput, match="runs:/"):
        build_context(client, "churn/x", tmp_path / "ctx")
    with pytest.raises(InvalidInput, match="not an image reference"):
        build_context(client, "churn/1", tmp_path / "ctx", base_image="python:3.11\n")
    assert not (tmp_path / "ctx").exists()


def test_build_refuses_a_non_empty_folder_and_force_replaces_only_a_context(
    client: Any, tmp_path: Path
) -> None:
    out = tmp_path / "ctx"
    out.mkdir()
    build_context(client, "churn/1", out)  # an empty folder is fine
    with pytest.raises(InvalidInput, match="not empty.*--force"):
        build_context(client, "churn/2", out)
    replaced = build_context(client, "churn/2", out, force=True)
    assert json.loads((out / "build.json").read_text())["version"] == replaced.version == 2

    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="not an earlier build context"):
        build_context(client, "churn/1", other, force=True)
    assert (other / "keep.txt").read_text() == "mine"
    with pytest.raises(InvalidInput, match="current folder"):
        build_context(client, "churn/1", ".", force=True)  # the tests run in tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctx", "notes", "store"]


def test_build_leaves_nothing_behind_when_the_package_is_corrupt(
    client: Any, tmp_path: Path
) -> None:
    from ctloop.models.package import read_manifest

    digest = client.models.resolve("churn/1").package_digest
    model_file = read_manifest(client.blobs, digest).files["model.skops"]
    blob = Path(client.blobs.root) / client.blobs.key(model_file)
    blob.chmod(0o644)
    blob.write_bytes(b"not the model")
    with pytest.raises(IntegrityError):
        build_context(client, "churn/1", tmp_path / "ctx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("churn-api", "churn-api"),
        ("Churn_Model.v2", "churn-model-v2"),
        ("3d-model", "m-3d-model"),
        ("x" * 80, "x" * 45),
    ],
)
def test_kubernetes_name_is_a_dns_label(name: str, expected: str) -> None:
    assert kubernetes_name(name) == expected


def test_build_cli_writes_a_context_and_fails_in_one_line(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    done = ctl("build", "churn-api", "-o", out, store=store)
    assert done.returncode == 0, done.stderr
    assert "churn/2 served as churn-api" in done.stdout and "docker build" in done.stdout
    assert (out / "Dockerfile").is_file()
    assert "not empty" in fails("build", "churn-api", "-o", out, store=store)
    shown = ctl("build", "churn/1", "-o", out, "--force", "--json", store=store)
    assert json.loads(shown.stdout)["version"] == 1
    assert "no deployment or registered model named 'nope'" in fails(
        "build", "nope", "-o", tmp_path / "x", store=store
    )
    assert "not a wheel" in fails(
        "build", "churn/1", "-o", tmp_path / "x", "--wheel", tmp_path / "none.whl", store=store
    )


# --- the context, installed and run ---------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(url: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode(errors="replace")


def _install(venv: Path, requirements: list[str]) -> None:
    """A fresh virtualenv with ``requirements`` and ctloop[server] from this checkout."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    reqs = venv.parent / "requirements-index.txt"
    reqs.write_text("".join(f"{r}\n" for r in requirements))
    done = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "-r",
            str(reqs),
            f"{REPO}[server]",
            "-c",
            str(REPO / "constraints.txt"),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_built_context_installs_in_a_fresh_venv_and_serves_predictions(
    store: Path, tmp_path: Path, churn: tuple[Any, Any]
) -> None:
    model, frame = churn
    out = tmp_path / "ctx"
    done = ctl("build", "churn-api", "-o", out, store=store)
    assert done.returncode == 0, done.stderr

    # What the Dockerfile's RUN pip install does; ctloop is not on the index, so the
    # pinned ctloop line is checked and this checkout installed in its place.
    requirements = (out / "requirements.txt").read_text().splitlines()
    ctloop_line = f"ctloop[server]=={ctloop.__version__}"
    assert requirements[-1] == ctloop_line
    venv = tmp_path / "venv"
    started = time.monotonic()
    _install(venv, requirements[:-1])
    print(f"fresh venv installed in {time.monotonic() - started:.1f}s")

    entrypoint = json.loads(dockerfile_instruction((out / "Dockerfile").read_text(), "ENTRYPOINT"))
    port = _free_port()
    swap = {"ctloop": str(venv / "bin" / "ctloop"), "/app/model": str(out / "model")}
    argv = [swap.get(a, a) for a in entrypoint]
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(port)
    data = tmp_path / "var-lib-ctloop"  # the image's writable /var/lib/ctloop
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CTLOOP_", "VIRTUAL_ENV"))}
    env |= {"CTLOOP_STORE": str(data / "store"), "CTLOOP_ARTIFACTS": str(data / "artifacts")}
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                pytest.fail(f"the entrypoint exited with {server.returncode}:\n"
                            f"{log_path.read_text()[-4000:]}")  # fmt: skip
            try:
                if _request(f"{base}/v2/health/ready")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()[-4000:]
            time.sleep(0.2)
        assert _request(f"{base}/v2/health/live")[0] == 200
        status, answer = _request(f"{base}/predict", {"instances": frame.to_dict("records")})
        assert status == 200, answer
        assert answer["predictions"] == model.predict(frame).tolist()
        assert len(answer["prediction_ids"]) == len(frame)
        assert "2" in str(answer["model_version"])
        status, metadata = _request(f"{base}/v2/models/churn-api")
        assert status == 200, metadata
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
