"""Loading a stored package into a :class:`LoadedModel` that checks its input.

Order of operations, each step before the next:

1. the folder object's manifest is read and verified (``BlobStore.read_manifest``: its
   digest, and that no path leaves the folder);
2. ``ctloop-model.json`` is read and verified against its digest and checked to list the
   same files with the same digests as the folder (:func:`~ctloop.models.package.read_package`);
3. a flavor that runs code on load (``python``) is refused unless ``trust=True``;
4. every file is copied into a fresh temporary folder, verified against the store while
   copying, then hashed again on disk and compared with the manifest;
5. only then does the flavor deserialise the model.

So a file changed in the artifact store after the package was logged raises
:class:`~ctloop.errors.IntegrityError` before anything is deserialised.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop._internal.hashing import sha256_file
from ctloop.errors import IntegrityError, InvalidInput
from ctloop.models.package import MANIFEST_FILE, ModelManifest, read_package

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ctloop.artifacts.blobstore import BlobStore
    from ctloop.models.flavors import Flavor
    from ctloop.models.signature import Signature

__all__ = ["LoadedModel", "load_package", "load_package_dir"]


class LoadedModel:
    """A model loaded from a package: ``predict`` and ``predict_proba`` check the input first.

    Attributes:
        manifest: the package's :class:`~ctloop.models.package.ModelManifest`.
        signature: its :class:`~ctloop.models.signature.Signature` (None when the model was
            logged without an input example; the input is then passed through unchecked).
        flavor: the flavor name.
        raw: the underlying model object.
        digest: the package digest.
    """

    def __init__(
        self, manifest: ModelManifest, raw: Any, flavor: Flavor, digest: str | None = None
    ) -> None:
        self.manifest = manifest
        self.signature: Signature | None = manifest.parsed_signature()
        self.flavor: str = manifest.flavor
        self.raw = raw
        self.digest = digest
        self._flavor = flavor

    def __repr__(self) -> str:
        short = f" {self.digest[:12]}" if self.digest else ""
        return f"<LoadedModel{short} {self.flavor} {self.manifest.model_class}>"

    @property
    def is_classifier(self) -> bool:
        """True when ``predict_proba`` is available."""
        output = self.signature.output if self.signature is not None else None
        if output is not None and output.kind != "probabilities":
            return False
        return self._flavor.has_predict_proba(self.raw)

    @property
    def classes(self) -> list[Any] | None:
        """Class labels, in ``predict_proba`` column order (None for regressors)."""
        if self.signature is not None and self.signature.output is not None:
            return self.signature.output.classes
        return None

    def prepare(self, data: Any) -> pd.DataFrame | np.ndarray:
        """The input checked against the signature, as the model takes it.

        Raises:
            SignatureMismatch: listing every problem (an InvalidInput).
        """
        from ctloop.models.signature import to_frame

        frame = to_frame(data) if self.signature is None else self.signature.validate(data)
        if len(frame) == 0:
            raise InvalidInput("the input has no rows")
        if self.signature is not None and self.signature.array_input:
            import numpy as np

            # row-major like the arrays models are trained on, so BLAS sums in the same order
            return np.ascontiguousarray(frame.to_numpy())
        return frame

    def predict(self, data: Any) -> Any:
        """Predictions for the rows of ``data`` (DataFrame, records or dict of columns)."""
        return self._flavor.predict(self.raw, self.prepare(data))

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities, one column per class in :attr:`classes` order.

        Raises:
            InvalidInput: the model is not a classifier with probabilities.
        """
        if not self.is_classifier:
            kind = (
                self.signature.output.kind
                if self.signature is not None and self.signature.output is not None
                else "unknown"
            )
            raise InvalidInput(
                f"this {self.manifest.model_class} is not a classifier with probabilities "
                f"(its output is {kind}); use predict()"
            )
        return self._flavor.predict_proba(self.raw, self.prepare(data))

    def predict_with_proba(self, data: Any, *, checked: bool = False) -> tuple[Any, Any | None]:
        """Predictions and, for a classifier, probabilities, checking the input once.

        ``checked=True`` says ``data`` is a DataFrame :meth:`Signature.validate` already
        returned (or concatenations of such frames), so it is not checked again: the
        inference server validates each request as it parses it.

        For a classifier the prediction of each row is the class of highest probability
        (what scikit-learn, XGBoost and LightGBM classifiers predict), so the model runs
        once; a model without class labels in its signature falls back to ``predict``.
        """
        import numpy as np

        if checked and self.signature is not None:
            prepared = np.ascontiguousarray(data.to_numpy()) if self.signature.array_input else data
        else:
            prepared = self.prepare(data)
        if not self.is_classifier:
            return self._flavor.predict(self.raw, prepared), None
        proba = np.asarray(self._flavor.predict_proba(self.raw, prepared))
        classes = self.classes
        if classes is None or proba.ndim != 2 or proba.shape[1] != len(classes):
            return self._flavor.predict(self.raw, prepared), proba
        return np.asarray(classes)[proba.argmax(axis=1)], proba


def load_package(blobs: BlobStore, package_digest: str, *, trust: bool = False) -> LoadedModel:
    """Load the package stored under ``package_digest``, verifying every file first.

    Args:
        blobs: the artifact store holding the package.
        package_digest: the digest of the package folder.
        trust: allow flavors whose loading runs code from the package (``python``:
            cloudpickle). Pass it only for packages logged by someone you trust.

    Raises:
        IntegrityError: a file (or the manifest) does not match its digest; nothing was
            deserialised.
        PermissionDenied: a ``python`` package without ``trust=True``, or an ``sklearn``
            package holding types outside ctloop's allowlist.
        NotFound: no such package.
        InvalidInput: not a model package, or a malformed or unsafe model file.
    """
    from ctloop.models.flavors import get_flavor

    manifest, entries = read_package(blobs, package_digest)
    where = f"model package {package_digest}"
    get_flavor(manifest.flavor).check_trust(manifest, trust=trust, where=where)
    with tempfile.TemporaryDirectory(prefix="ctloop-model-") as tmp:
        folder = Path(tmp)
        for entry in entries:
            try:
                blobs.get(entry.sha256, folder / entry.path, kind="file", verify=True)
            except IntegrityError as exc:
                raise IntegrityError(
                    f"{where}: file {entry.path!r} failed its digest check, so nothing was "
                    f"loaded; the package was changed after it was logged ({exc})"
                ) from None
            except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
                # e.g. a forged folder listing both "a" and "a/b"
                raise InvalidInput(f"{where}: its file paths conflict ({exc})") from None
        return load_package_dir(folder, manifest, trust=trust, digest=package_digest)


def load_package_dir(
    folder: str | os.PathLike[str],
    manifest: ModelManifest,
    *,
    trust: bool = False,
    digest: str | None = None,
) -> LoadedModel:
    """Load a package folder that is already on this machine (e.g. downloaded, verified).

    Steps 3 to 5 of the module docstring: the trust check, then every file in the folder
    is hashed and must be exactly the files ``manifest`` lists (besides the manifest
    itself) with the digests it records; only then does the flavor deserialise the model.
    The caller has verified ``manifest`` itself (it is part of the package digest).

    Args:
        folder: the package folder; it may be removed once this returns.
        manifest: the package's verified manifest.
        trust: as for :func:`load_package`.
        digest: the package digest, for messages and :attr:`LoadedModel.digest`.

    Raises:
        IntegrityError: a file is missing, extra or does not match the manifest.
        PermissionDenied: as for :func:`load_package`.
        InvalidInput: a malformed or unsafe model file.
    """
    from ctloop.models.flavors import get_flavor

    root = Path(folder)
    flavor = get_flavor(manifest.flavor)
    where = f"model package {digest}" if digest else f"model package {str(root)!r}"
    flavor.check_trust(manifest, trust=trust, where=where)
    present = {
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()
    } - {MANIFEST_FILE}
    extra = sorted(present - set(manifest.files))
    if extra:
        raise IntegrityError(
            f"{where}: file {extra[0]!r} is not in its manifest; nothing was loaded"
        )
    for path, expected in manifest.files.items():
        file = root / path
        if file.is_symlink() or not file.is_file() or sha256_file(file)[0] != expected:
            raise IntegrityError(
                f"{where}: file {path!r} does not match the digest in its manifest; "
                "nothing was loaded"
            )
    raw = flavor.load(root, manifest, trust=trust)
    return LoadedModel(manifest, raw, flavor, digest)
