"""A dataset version's data as a pandas DataFrame, for validating or inferring a suite."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ctloop.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.client import Client
    from ctloop.data.entities import DatasetVersion

__all__ = ["load_frame"]


def load_frame(client: Client, ref: str | DatasetVersion) -> pd.DataFrame:
    """The data of a CSV or Parquet dataset version (a file or a folder of files).

    The data is downloaded (verified against its digest) to a temporary folder, read,
    and the folder removed. A folder's files are read in name order and stacked; the
    rows are numbered from 0 across them, so failing-row indices point into the version.

    Raises:
        NotFound: an unknown dataset or version.
        InvalidInput: the version is not CSV or Parquet, or its data cannot be read.
    """
    import pandas as pd

    from ctloop.data.profile import tabular_files

    version = client.datasets.resolve(ref)
    if version.format not in ("csv", "parquet"):
        raise InvalidInput(
            f"dataset version {version.ref} is not a CSV or Parquet table (its format is "
            f"{version.format or 'unknown'}), so it cannot be loaded as a DataFrame"
        )
    with tempfile.TemporaryDirectory(prefix="ctloop-frame-") as tmp:
        if version.kind == "file":
            name = Path(version.source_path or f"{version.name}.{version.format}").name
            files = [client.datasets.download(version, Path(tmp) / name)]
        else:
            folder = client.datasets.download(version, Path(tmp) / "data")
            files = tabular_files(folder)
        if not files:
            raise InvalidInput(f"dataset version {version.ref} holds no data files")
        try:
            if version.format == "csv":
                parts = [pd.read_csv(f) for f in files]
            else:
                parts = [pd.read_parquet(f) for f in files]
        except Exception as exc:  # any reader error means unreadable data: say which
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise InvalidInput(
                f"cannot read dataset version {version.ref} as {version.format}: "
                f"{type(exc).__name__}: {first}"
            ) from None
    if len(parts) == 1:
        return parts[0]
    return pd.concat(parts, ignore_index=True)
