"""Container build contexts: one registered model version, ready for ``docker build``.

:func:`build_context` writes a folder holding everything an image and a cluster need::

    Dockerfile            python:<major.minor>-slim, pinned requirements, a non-root user,
                          a HEALTHCHECK, and ``ctloop serve /app/model`` as the entrypoint
    .dockerignore         keeps k8s/ and README.md out of the image
    requirements.txt      the package's pinned requirements plus ctloop[server]==<this ctloop>
    wheels/               wheels pip may install from (ctloop's own, when it is not on an index)
    model/                the model package, byte for byte as registered
    build.json            what was built: target, model, version, package digest, ctloop version
    README.md             how to build, run and deploy it
    k8s/deployment.yaml   apps/v1 Deployment with readiness and liveness probes (OIP health)
    k8s/service.yaml      a ClusterIP Service in front of it
    k8s/inferenceservice.yaml  a KServe ServingRuntime (protocol v2) and an InferenceService

The target is a deployment name or a model reference (``churn@champion``, ``churn/3``,
``churn``). A container serves one version, so a deployment must route all its traffic to
one version; a split (a canary) is refused with the versions to pick from, because an image
that silently dropped the canary would not be what the deployment says. Shadows are not
built either: they only log, and need the store to compare against.

Nothing is half-written: the context is assembled in a hidden folder beside ``out_dir`` and
renamed into place only once complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop._internal.hashing import sha256_file
from ctloop.errors import IntegrityError, InvalidInput, NotFound
from ctloop.serving.build_files import (
    _DOCKERIGNORE,
    _WHEELS_README,
    BUILD_FILE,
    PORT,
    _dockerfile,
    _entrypoint,
    _k8s_deployment,
    _k8s_service,
    _kserve,
    _readme,
    _requirements,
)

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.models.package import ModelManifest
    from ctloop.registry.entities import ModelVersion
    from ctloop.serving.entities import Deployment

__all__ = ["BUILD_FILE", "PORT", "BuildResult", "build_context", "kubernetes_name"]

K8S_NAME_MAX = 45  # KServe adds "-predictor" and the namespace to make a 63-character host

_PYTHON = re.compile(r"^(\d+)\.(\d+)(?:\.\d+)?")
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}")  # no spaces: it is a Dockerfile word


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_context` wrote.

    Attributes:
        out_dir: the build context folder.
        target: the target as given (deployment name or model reference).
        deployment: the deployment's name when the target was one, else None.
        name: the name the container serves the model under (``/v2/models/{name}``).
        kubernetes_name: ``name`` as a Kubernetes resource name (DNS label).
        model: the registered model's name.
        version: the model version packaged.
        package_digest: the sha256 of the model package.
        image: the image reference the manifests and README use.
        python_version: ``major.minor`` of the base image.
        ctloop_version: the ctloop pinned in ``requirements.txt``.
        requirements: the lines of ``requirements.txt``.
        entrypoint: the image's ENTRYPOINT (``ctloop serve /app/model …``).
        files: every file written, relative to ``out_dir``, sorted.
    """

    out_dir: Path
    target: str
    deployment: str | None
    name: str
    kubernetes_name: str
    model: str
    version: int
    package_digest: str
    image: str
    python_version: str
    ctloop_version: str
    requirements: list[str]
    entrypoint: list[str]
    files: list[str] = field(default_factory=list)

    @property
    def model_ref(self) -> str:
        """``NAME/VERSION`` of the packaged version."""
        return f"{self.model}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``out_dir`` as a string)."""
        out = asdict(self)
        out["out_dir"] = str(self.out_dir)
        out["model_ref"] = self.model_ref
        return out


def kubernetes_name(name: str) -> str:
    """``name`` as a Kubernetes resource name: a lowercase DNS label starting with a letter.

    Other characters become ``-``; the result is cut to 45 characters so KServe's derived
    host names stay within 63.

    Raises:
        InvalidInput: nothing usable is left (pass a name made of letters and digits).
    """
    label = _NOT_DNS.sub("-", name.lower()).strip("-")
    if label and not label[0].isalpha():
        label = f"m-{label}"
    label = label[:K8S_NAME_MAX].rstrip("-")
    if not label:
        raise InvalidInput(
            f"cannot make a Kubernetes name out of {name!r}; pass --name with letters and digits"
        )
    return label


def build_context(
    client: Client,
    target: str,
    out_dir: str | os.PathLike[str],
    *,
    name: str | None = None,
    image: str | None = None,
    base_image: str | None = None,
    wheels: Sequence[str | os.PathLike[str]] = (),
    trust: bool = False,
    force: bool = False,
) -> BuildResult:
    """Write a container build context for ``target`` into the folder ``out_dir``.

    Args:
        client: the store the deployment or model is registered in.
        target: a deployment name, or a model reference (``churn@champion``, ``churn/3``,
            ``churn`` for the latest version). A name that is both a deployment and a model
            means the deployment; write ``churn@latest`` for the model.
        out_dir: the folder to write; it must not exist or be empty, unless ``force``.
        name: the name the model is served under (default: the deployment's name, or the
            model's name for a model reference).
        image: the image reference for the manifests (default ``<k8s name>:v<version>``).
        base_image: the ``FROM`` image (default ``python:<major.minor>-slim`` of the Python
            the package was made with).
        wheels: wheel files to copy into ``wheels/`` for pip to install from (ctloop's own
            wheel, when ctloop is not on the image's package index).
        trust: allow a package whose flavor runs code when loaded (``python``); the image
            then serves with ``ctloop serve --trust``.
        force: replace ``out_dir`` when it holds an earlier build context.

    Returns:
        A :class:`BuildResult` describing what was written.

    Raises:
        NotFound: no deployment or model ``target``.
        InvalidInput: a malformed target, a deployment splitting traffic over several
            versions, a non-empty ``out_dir`` (or one that is not a build context, with
            ``force``), a wheel that is not a ``.whl`` file.
        PermissionDenied: a ``python`` flavor package without ``trust``.
        IntegrityError: the stored package does not match its digests.
    """
    import ctloop

    out = Path(out_dir)
    _check_destination(out, force=force)
    wheel_files = _check_wheels(wheels)
    deployment, version = _resolve(client, target)
    serve_name = name if name is not None else (deployment.name if deployment else version.name)
    _check_serve_name(serve_name)
    k8s_name = kubernetes_name(serve_name)
    tag = image or f"{k8s_name}:v{version.version}"
    _check_image(tag, "--image")
    if base_image is not None:
        _check_image(base_image, "--base-image")

    where = out.absolute()  # so "." has a name and a parent to build beside
    where.parent.mkdir(parents=True, exist_ok=True)
    tmp = where.parent / f".{where.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        manifest = _write_model(client, version, tmp / "model")
        _check_trust(manifest, version, trust=trust)
        python = _python_minor(manifest.python_version, version)
        result = BuildResult(
            out_dir=out,
            target=target,
            deployment=deployment.name if deployment is not None else None,
            name=serve_name,
            kubernetes_name=k8s_name,
            model=version.name,
            version=version.version,
            package_digest=version.package_digest,
            image=tag,
            python_version=python,
            ctloop_version=ctloop.__version__,
            requirements=[*manifest.requirements, f"ctloop[server]=={ctloop.__version__}"],
            entrypoint=_entrypoint(
                serve_name,
                trust=trust,
                log_payloads=deployment.log_payloads if deployment is not None else True,
            ),
        )
        result = _write_context(tmp, result, base_image or f"python:{python}-slim", wheel_files)
        _move_into_place(tmp, where)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _write_context(tmp: Path, r: BuildResult, base_image: str, wheels: list[Path]) -> BuildResult:
    """Write everything but ``model/`` into ``tmp``; ``r`` with its ``files`` filled in."""
    (tmp / "wheels").mkdir()
    for wheel in wheels:
        shutil.copy2(wheel, tmp / "wheels" / wheel.name)
    _write_text(tmp / "wheels" / "README.txt", _WHEELS_README)
    _write_text(tmp / "requirements.txt", _requirements(r))
    _write_text(tmp / "Dockerfile", _dockerfile(r, base_image))
    _write_text(tmp / ".dockerignore", _DOCKERIGNORE)
    _write_text(tmp / "README.md", _readme(r))
    (tmp / "k8s").mkdir()
    _write_yaml(tmp / "k8s" / "deployment.yaml", [_k8s_deployment(r)])
    _write_yaml(tmp / "k8s" / "service.yaml", [_k8s_service(r)])
    _write_yaml(tmp / "k8s" / "inferenceservice.yaml", _kserve(r))
    written = [p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file()]
    r = dataclasses.replace(r, files=sorted([*written, BUILD_FILE]))
    build_json = {k: v for k, v in r.to_dict().items() if k != "out_dir"}
    _write_text(tmp / BUILD_FILE, json.dumps(build_json, indent=2, sort_keys=True) + "\n")
    return r


# --- the target -----------------------------------------------------------------------------


def _resolve(client: Client, target: str) -> tuple[Deployment | None, ModelVersion]:
    """The deployment (or None) and the one model version ``target`` names."""
    from ctloop.registry.refs import parse_model_ref

    if not isinstance(target, str) or not target.strip():
        raise InvalidInput(
            f"invalid build target {target!r}: give a deployment name or a model reference "
            "such as churn@champion or churn/3"
        )
    is_ref = any(c in target for c in "/@:")
    if not is_ref:
        try:
            deployment = client.deployments.get(target)
        except NotFound:
            pass
        else:
            routes = sorted(deployment.routes, key=lambda r: (-r.weight, r.version))
            if len(routes) != 1:
                split = ", ".join(
                    f"{deployment.model}/{r.version} ({r.weight}% {r.variant})" for r in routes
                )
                raise InvalidInput(
                    f"deployment '{target}' splits its traffic over {split}; an image "
                    "serves one version, so build the one you want by model reference, e.g.: "
                    f"ctloop build {deployment.model}/{routes[0].version} --name {target} -o DIR"
                )
            ref = f"{deployment.model}/{routes[0].version}"
            return deployment, client.models.resolve(ref)
    parse_model_ref(target)  # a malformed reference fails with the forms it may take
    try:
        return None, client.models.resolve(target)
    except NotFound as exc:
        if is_ref:
            raise
        raise NotFound(
            f"no deployment or registered model named '{target}'; list them with: "
            "ctloop deployments list, or: ctloop models list"
        ) from exc


def _check_image(value: str, option: str) -> None:
    if not _IMAGE.fullmatch(value):
        raise InvalidInput(
            f"{option} {value!r} is not an image reference; write REPOSITORY[:TAG], e.g. "
            "registry.example.com/churn:v3"
        )


def _check_serve_name(name: str) -> None:
    from ctloop._internal.names import check_name

    check_name(name, "served model")


# --- the model package ----------------------------------------------------------------------


def _write_model(client: Client, version: ModelVersion, dest: Path) -> ModelManifest:
    """Copy the package out of the artifact store and check every byte against its manifest."""
    from ctloop.models.package import MANIFEST_FILE, ModelManifest

    digest = version.package_digest
    client.objects.get(digest, "dir", dest)
    where = f"the package of {version.name}/{version.version} ({digest[:12]})"
    manifest_file = dest / MANIFEST_FILE
    if not manifest_file.is_file():
        raise InvalidInput(f"{where} has no {MANIFEST_FILE}; it is not a ctloop model package")
    manifest = ModelManifest.from_json(manifest_file.read_bytes())
    present = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    present.discard(MANIFEST_FILE)
    if present != set(manifest.files):
        raise IntegrityError(f"{where} does not hold exactly the files its manifest lists")
    for path, expected in manifest.files.items():
        if sha256_file(dest / path)[0] != expected:
            raise IntegrityError(f"{where}: file {path!r} does not match its manifest's digest")
    return manifest


def _check_trust(manifest: ModelManifest, version: ModelVersion, *, trust: bool) -> None:
    from ctloop.errors import PermissionDenied
    from ctloop.models.flavors import get_flavor

    try:
        get_flavor(manifest.flavor).check_trust(
            manifest, trust=trust, where=f"{version.name}/{version.version}"
        )
    except PermissionDenied as exc:
        raise PermissionDenied(
            f"{exc}; to build an image that loads it, pass --trust (trust=True): the image "
            "then runs ctloop serve --trust"
        ) from None


def _python_minor(python_version: str, version: ModelVersion) -> str:
    found = _PYTHON.match(python_version)
    if found is None:
        raise InvalidInput(
            f"the package of {version.name}/{version.version} records Python "
            f"{python_version!r}, not MAJOR.MINOR[.PATCH]; pass --base-image to choose the image"
        )
    return f"{found[1]}.{found[2]}"


def _check_wheels(wheels: Sequence[str | os.PathLike[str]]) -> list[Path]:
    out = []
    for wheel in wheels:
        path = Path(wheel)
        if path.suffix != ".whl" or not path.is_file():
            raise InvalidInput(
                f"--wheel {str(path)!r} is not a wheel file; build ctloop's with: "
                "python -m pip wheel --no-deps -w dist /path/to/ctloop"
            )
        out.append(path)
    return out


# --- the destination ------------------------------------------------------------------------


def _check_destination(out: Path, *, force: bool) -> None:
    if not out.exists():
        return
    here = Path.cwd().resolve()
    if out.resolve() == here or out.resolve() in here.parents:
        # the context is renamed into place, which would pull the folder from under the shell
        raise InvalidInput(
            f"cannot build into {str(out)!r}: it is (or holds) the current folder; pick a new "
            "folder, e.g. -o build/NAME"
        )
    if not out.is_dir():
        raise InvalidInput(f"cannot build into {str(out)!r}: it is a file; pick a folder")
    if not any(out.iterdir()):
        return
    if not force:
        raise InvalidInput(
            f"{str(out)!r} is not empty; pick a new folder, or pass --force to replace an "
            "earlier build context there"
        )
    if not (out / BUILD_FILE).is_file():
        raise InvalidInput(
            f"{str(out)!r} is not empty and holds no {BUILD_FILE}, so it is not an earlier "
            "build context; --force only replaces those: pick another folder or empty it yourself"
        )


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished context onto ``out`` (replacing an empty or earlier one)."""
    if out.exists():
        old = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.old"
        os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            os.replace(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _write_yaml(path: Path, documents: list[dict[str, Any]]) -> None:
    import yaml

    text = yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False, width=100)
    _write_text(path, text)
