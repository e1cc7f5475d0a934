"""The text of a container build context: Dockerfile, requirements, README and manifests.

:mod:`ctloop.serving.build` resolves the target, copies the model package and writes the
folder atomically; this module only turns a :class:`~ctloop.serving.build.BuildResult` into
the files' contents::

    Dockerfile            :func:`_dockerfile` (and the image's ENTRYPOINT, :func:`_entrypoint`)
    requirements.txt      :func:`_requirements`
    .dockerignore         :data:`_DOCKERIGNORE`
    README.md             :func:`_readme` (and ``wheels/README.txt``, :data:`_WHEELS_README`)
    k8s/*.yaml            :func:`_k8s_deployment`, :func:`_k8s_service`, :func:`_kserve`
                          (documents for ``yaml.safe_dump_all``)

The constants shared with the manifests (port, paths, user id) live here too.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.serving.build import BuildResult

BUILD_FILE = "build.json"
PORT = 8080
APP_MODEL_DIR = "/app/model"
DATA_DIR = "/var/lib/ctloop"
UID = 10001  # numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"
PART_OF = "ctloop"

_DOCKERIGNORE = "k8s/\nREADME.md\n"


def _requirements(r: BuildResult) -> str:
    return "".join(f"{line}\n" for line in r.requirements)


# --- the Dockerfile -------------------------------------------------------------------------


def _exec_form(args: list[str]) -> str:
    return json.dumps(args)


def _entrypoint(name: str, *, trust: bool, log_payloads: bool) -> list[str]:
    return [
        "ctloop",
        "serve",
        APP_MODEL_DIR,
        "--name",
        name,
        "--host",
        "0.0.0.0",  # inside a container: the published port is the boundary
        "--port",
        str(PORT),
        *(["--trust"] if trust else []),
        *([] if log_payloads else ["--no-log-payloads"]),
    ]


def _dockerfile(r: BuildResult, base: str) -> str:
    probe = (
        "import urllib.request; "
        f"urllib.request.urlopen('http://127.0.0.1:{PORT}{READY_PATH}', timeout=4)"
    )
    healthcheck = _exec_form(["python", "-c", probe])
    labels = {
        "org.opencontainers.image.title": r.name,
        "org.opencontainers.image.version": f"{r.model}/{r.version}",
        "org.opencontainers.image.description": f"ctloop serving {r.model}/{r.version}",
        "dev.ctloop.model": r.model,
        "dev.ctloop.version": str(r.version),
        "dev.ctloop.package-digest": r.package_digest,
        "dev.ctloop.ctloop-version": r.ctloop_version,
    }
    label_lines = " \\\n      ".join(f"{k}={json.dumps(v)}" for k, v in labels.items())
    return f"""\
# Built by ctloop {r.ctloop_version} from {r.target!r}: model {r.model}/{r.version},
# package sha256:{r.package_digest}.
# Regenerate with: ctloop build {r.target} -o DIR --force
FROM {base}

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies first, so a new model version with the same requirements reuses this layer.
COPY requirements.txt /tmp/build/requirements.txt
COPY wheels/ /tmp/build/wheels/
RUN python -m pip install --no-cache-dir --find-links /tmp/build/wheels \\
        -r /tmp/build/requirements.txt \\
    && rm -rf /tmp/build

RUN groupadd --system --gid {UID} ctloop \\
    && useradd --system --uid {UID} --gid {UID} --home-dir {DATA_DIR} --create-home \\
        --shell /usr/sbin/nologin ctloop

# The prediction log goes to the store; point CTLOOP_STORE/CTLOOP_ARTIFACTS at a shared
# store (PostgreSQL, S3) at run time to monitor from elsewhere.
ENV HOME={DATA_DIR} \\
    CTLOOP_STORE={DATA_DIR}/store \\
    CTLOOP_ARTIFACTS={DATA_DIR}/artifacts

# Owned by root and read-only to the server: the package is verified against its digests.
COPY model/ {APP_MODEL_DIR}/
COPY {BUILD_FILE} /app/{BUILD_FILE}

LABEL {label_lines}

USER {UID}:{UID}
WORKDIR {DATA_DIR}
EXPOSE {PORT}
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \\
    CMD {healthcheck}
ENTRYPOINT {_exec_form(r.entrypoint)}
"""


# --- Kubernetes -----------------------------------------------------------------------------


def _labels(r: BuildResult) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": r.kubernetes_name,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/version": f"v{r.version}",
    }


def _annotations(r: BuildResult) -> dict[str, str]:
    return {
        "ctloop.dev/model": f"{r.model}/{r.version}",
        "ctloop.dev/package-digest": r.package_digest,
        "ctloop.dev/target": r.target,
    }


def _probe(path: str, *, initial: int, period: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": PORT},
        "initialDelaySeconds": initial,
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }


def _container(r: BuildResult, container_name: str) -> dict[str, Any]:
    return {
        "name": container_name,
        "image": r.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": _probe(READY_PATH, initial=5, period=5),
        "livenessProbe": _probe(LIVE_PATH, initial=15, period=10),
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _k8s_deployment(r: BuildResult) -> dict[str, Any]:
    container = _container(r, "model")
    container["volumeMounts"] = [{"name": "ctloop-data", "mountPath": DATA_DIR}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": r.kubernetes_name,
            "labels": _labels(r),
            "annotations": _annotations(r),
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": r.kubernetes_name}},
            "template": {
                "metadata": {"labels": _labels(r), "annotations": _annotations(r)},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "fsGroup": UID},
                    "containers": [container],
                    # the prediction log; mount a volume of your own, or set CTLOOP_STORE
                    "volumes": [{"name": "ctloop-data", "emptyDir": {}}],
                },
            },
        },
    }


def _k8s_service(r: BuildResult) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": r.kubernetes_name, "labels": _labels(r)},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": r.kubernetes_name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _kserve(r: BuildResult) -> list[dict[str, Any]]:
    """A ServingRuntime for this image and an InferenceService using it with protocol v2.

    KServe's ``protocolVersion`` belongs to a predictor's ``model`` (a bare custom container
    has none), so the image is declared as a runtime speaking v2 and the predictor names it.
    """
    runtime = f"{r.kubernetes_name}-runtime"
    container = _container(r, "kserve-container")
    return [
        {
            "apiVersion": "serving.kserve.io/v1alpha1",
            "kind": "ServingRuntime",
            "metadata": {"name": runtime, "labels": _labels(r), "annotations": _annotations(r)},
            "spec": {
                "supportedModelFormats": [{"name": "ctloop", "version": "1", "autoSelect": False}],
                "protocolVersions": ["v2"],
                "containers": [container],
            },
        },
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {
                "name": r.kubernetes_name,
                "labels": _labels(r),
                "annotations": _annotations(r),
            },
            "spec": {
                "predictor": {
                    "model": {
                        "modelFormat": {"name": "ctloop", "version": "1"},
                        "runtime": runtime,
                        "protocolVersion": "v2",
                    }
                }
            },
        },
    ]


# --- README ---------------------------------------------------------------------------------

_WHEELS_README = """\
Wheels in this folder are offered to pip when the image is built (--find-links).
Put ctloop's wheel here when ctloop is not on the package index the build uses:
    python -m pip wheel --no-deps -w wheels /path/to/ctloop
or pass --wheel to ctloop build.
"""


def _readme(r: BuildResult) -> str:
    source = f"deployment `{r.deployment}`" if r.deployment else f"`{r.target}`"
    return f"""\
# {r.name}: model {r.model}/{r.version}

Built by ctloop {r.ctloop_version} from {source}. The model package (sha256
`{r.package_digest}`) is in `model/`, byte for byte as registered; `build.json` records
what was built.

## Build and run the image

    docker build -t {r.image} .
    docker run --rm -p {PORT}:{PORT} {r.image}
    curl localhost:{PORT}{READY_PATH}
    curl -X POST localhost:{PORT}/predict -H 'content-type: application/json' \\
        -d '{{"instances": [{{...one record...}}]}}'

The Open Inference Protocol (V2) endpoint is `POST /v2/models/{r.name}/infer`.

`requirements.txt` pins `ctloop[server]=={r.ctloop_version}`. If ctloop is not on the
package index your build uses, put its wheel in `wheels/` first
(`python -m pip wheel --no-deps -w wheels /path/to/ctloop`).

The server runs as user {UID} (not root) and logs predictions to the store at
`{DATA_DIR}`; set `CTLOOP_STORE` and `CTLOOP_ARTIFACTS` to a shared store (PostgreSQL, S3)
to monitor them from elsewhere.

## Deploy to Kubernetes

Push the image where your cluster pulls from (rebuild with `--image REGISTRY/NAME:TAG`
so the manifests name it), then either

    kubectl apply -f k8s/deployment.yaml -f k8s/service.yaml

for a plain Deployment and Service (`{r.kubernetes_name}`, port 80), or, with KServe
installed,

    kubectl apply -f k8s/inferenceservice.yaml

for a ServingRuntime and an InferenceService speaking protocol v2.
"""
