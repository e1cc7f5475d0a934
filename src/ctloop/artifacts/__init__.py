"""Layer 1: the content-addressed artifact store (local folders or S3 through fsspec)."""

from ctloop.artifacts.blobstore import BlobStore, DirEntry, StoredObject, open_blob_store
from ctloop.artifacts.hashcache import HashCache

__all__ = ["BlobStore", "DirEntry", "HashCache", "StoredObject", "open_blob_store"]
