"""``/api/v1/objects``: the objects protocol, the one way bytes reach the server.

Every file and folder a remote client stores (run artifacts, datasets, model packages)
travels here first; the metadata routes (``POST /runs/{id}/artifacts``,
``POST /datasets/{name}/versions``) then name the object by its digest, and the server
checks it holds it. A digest is the sha256 of the content in 64 lowercase hex
characters; a malformed one is a 400.

1. ``POST /objects/missing`` ``{"objects": [{"digest": …, "kind": "file" | "dir"}]}`` →
   ``{"missing": [...], "max_upload_bytes": N}``: which of these the store lacks (at most
   10,000 per request), so unchanged data is never sent again, and the largest file the
   server takes.
2. ``PUT /objects/sha256/{digest}``, the raw bytes as the body (streamed; send a
   Content-Length): written to a temporary file while hashed and published only if they
   hash to ``{digest}``, else 422 ``INTEGRITY_ERROR`` and nothing is stored. More than
   ``max_upload_bytes`` (``CTLOOP_SERVER_MAX_UPLOAD_BYTES``) is a 413 and stores nothing.
   A new object answers 201; one already stored 200 (the body is read and dropped: what a
   client sends can never replace stored bytes).
3. ``PUT /objects/sha256/{digest}.dir``, a folder's manifest as the body: the canonical
   JSON (sorted keys, no spaces) of its entries ``[{"path", "sha256", "size"}]`` sorted by
   path. Checked against the digest like a file (422), then parsed: every path must be
   relative, without ``..``, NUL or ``\\`` (400), and every file it names must already be
   stored with the size it claims (409 ``CONFLICT`` naming the missing digests; 422 for a
   wrong size). Upload the files first, the manifest last: a stored ``.dir`` always means
   a complete folder. Limit: ``CTLOOP_SERVER_MAX_MANIFEST_BYTES``.
4. ``GET /objects/sha256/{digest}`` streams a file, ``GET …/{digest}.dir`` returns a
   manifest (404 when absent). Objects never change, so responses are cacheable; clients
   verify what they receive against the digest.

The JSON bodies of this router, like every router's, are limited to
``CTLOOP_SERVER_MAX_BODY_BYTES`` (413; see :mod:`ctloop.server.limits`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from ctloop._internal.hashing import CHUNK, is_sha256
from ctloop._internal.wire import to_wire
from ctloop.errors import InvalidInput, NotFound, PayloadTooLarge
from ctloop.server.deps import ClientDep
from ctloop.server.limits import JsonBodyLimit

if TYPE_CHECKING:
    from ctloop.artifacts import BlobStore, StoredObject

MAX_OBJECTS = 10_000  # per /objects/missing request


router = APIRouter(prefix="/objects", tags=["objects"], route_class=JsonBodyLimit)


class ObjectRef(BaseModel):
    digest: str = Field(description="sha256 of the content, 64 lowercase hex characters")
    kind: Literal["file", "dir"] = Field("file", description="a file, or a folder manifest")


class MissingIn(BaseModel):
    objects: list[ObjectRef] = Field(max_length=MAX_OBJECTS)


class MissingOut(BaseModel):
    missing: list[ObjectRef]
    max_upload_bytes: int = Field(description="the largest file object the server takes")


class StoredOut(BaseModel):
    digest: str
    kind: Literal["file", "dir"]
    size: int = Field(description="bytes of the file, or of all files of the folder")
    file_count: int
    existed: bool = Field(description="the store held the object already")


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {
                    "type": "array",
                    "description": "a folder manifest (for DIGEST.dir), canonical JSON",
                    "items": {
                        "type": "object",
                        "properties": {
                            "path": {"type": "string"},
                            "sha256": {"type": "string"},
                            "size": {"type": "integer"},
                        },
                    },
                }
            },
        },
    }
}


def _object(name: str) -> tuple[str, str]:
    """(digest, kind) of an object name: ``DIGEST`` or ``DIGEST.dir``."""
    digest, kind = (name[:-4], "dir") if name.endswith(".dir") else (name, "file")
    if not is_sha256(digest):
        raise InvalidInput(
            f"invalid object name {name[:100]!r}: use a sha256 digest (64 lowercase hex "
            "characters), followed by '.dir' for a folder"
        )
    return digest, kind


def _too_large(what: str, limit: int, setting: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{what} is over the server's limit of {limit} bytes; nothing was stored (its "
        f"operator can raise {setting})"
    )


@router.post("/missing", response_model=MissingOut)
def missing_objects(body: MissingIn, client: ClientDep) -> dict[str, Any]:
    """Which of these objects the store lacks: upload those, skip the rest.

    At most 10,000 objects per request. ``max_upload_bytes`` is the largest file the
    server takes, so a client can refuse a larger one before sending any of it.
    """
    absent = client.blobs.missing((o.digest, o.kind) for o in body.objects)
    return {
        "missing": [{"digest": d, "kind": k} for d, k in absent],
        "max_upload_bytes": client.settings.server.max_upload_bytes,
    }


@router.put(
    "/sha256/{name}",
    status_code=201,
    response_model=StoredOut,
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {"description": "the store held the object already", "model": StoredOut},
        409: {"description": "a manifest names file objects the store lacks"},
        413: {"description": "over the server's size limit; nothing stored"},
        422: {"description": "the bytes do not hash to the digest; nothing stored"},
    },
)
async def put_object(name: str, request: Request, client: ClientDep) -> JSONResponse:
    """Store a file (``DIGEST``) or a folder manifest (``DIGEST.dir``) under its digest.

    The body (raw bytes, streamed) is hashed as it arrives and kept only if it hashes to
    ``DIGEST``: 422 otherwise, and 413 past ``CTLOOP_SERVER_MAX_UPLOAD_BYTES``; either
    way nothing is stored. 201 for a new object, 200 for one already stored (its bytes
    are never replaced). A manifest (canonical JSON of ``[{path, sha256, size}]`` sorted
    by path) must name safe relative paths (400) of files already stored with those
    sizes (409 listing the missing digests): send it after its files.
    """
    digest, kind = _object(name)
    limits = client.settings.server
    blobs = client.blobs
    try:
        if kind == "dir":
            what = f"the manifest of folder object {digest}"
            data = await _read_body(
                request, limits.max_manifest_bytes, what, "CTLOOP_SERVER_MAX_MANIFEST_BYTES"
            )
            stored = await run_in_threadpool(blobs.put_manifest, digest, data)
        else:
            stored = await _receive_file(request, blobs, digest, limits.max_upload_bytes)
    except ClientDisconnect:
        raise InvalidInput(
            f"the client disconnected before object {name} was complete; nothing was stored"
        ) from None
    return JSONResponse(to_wire(stored), status_code=200 if stored.existed else 201)


async def _read_body(request: Request, limit: int, what: str, setting: str) -> bytes:
    _check_declared(request, limit, what, setting)
    parts: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _too_large(what, limit, setting)
        parts.append(chunk)
    return b"".join(parts)


def _check_declared(request: Request, limit: int, what: str, setting: str) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(what, limit, setting)


async def _receive_file(
    request: Request, blobs: BlobStore, digest: str, limit: int
) -> StoredObject:
    """Stream the body into the store as ``digest``: hashed, size-limited, then published.

    Pieces are gathered to about a MiB and handed to a worker thread, so hashing and disk
    writes never hold up the event loop.
    """
    what, setting = f"object {digest}", "CTLOOP_SERVER_MAX_UPLOAD_BYTES"
    _check_declared(request, limit, what, setting)
    if await run_in_threadpool(blobs.exists, digest):
        received = 0
        async for chunk in request.stream():  # drained so the connection stays usable
            received += len(chunk)
            if received > limit:
                raise _too_large(what, limit, setting)
        return await run_in_threadpool(blobs.stat, digest)
    upload = await run_in_threadpool(blobs.receive, digest, max_bytes=limit)
    try:
        pending: list[bytes] = []
        size = received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise _too_large(what, limit, setting)
            pending.append(chunk)
            size += len(chunk)
            if size >= CHUNK:
                await run_in_threadpool(upload.write, b"".join(pending))
                pending, size = [], 0
        if pending:
            await run_in_threadpool(upload.write, b"".join(pending))
        return await run_in_threadpool(upload.commit)
    finally:
        upload.abort()  # a no-op after commit; otherwise the temporary file goes


_IMMUTABLE = "private, max-age=31536000, immutable"


@router.get(
    "/sha256/{name}",
    response_class=Response,
    responses={
        200: {
            "description": "the object's bytes (a folder: its manifest)",
            "content": {"application/octet-stream": {}, "application/json": {}},
        },
        404: {"description": "the store holds no such object"},
    },
)
def get_object(name: str, client: ClientDep) -> Response:
    """Download a file (``DIGEST``, streamed) or a folder manifest (``DIGEST.dir``).

    Objects never change: the response is cacheable, and clients check the bytes
    against the digest.
    """
    digest, kind = _object(name)
    blobs = client.blobs
    size = blobs.object_sizes([digest], kind)[digest]
    if size is None:
        raise NotFound(f"the artifact store holds no object {name}")
    headers = {"ETag": f'"{digest}"', "Cache-Control": _IMMUTABLE}
    if kind == "dir":
        data = blobs.read_bytes(digest, kind="dir", verify=False)  # the client verifies
        return Response(data, media_type="application/json", headers=headers)

    def chunks() -> Iterator[bytes]:
        with blobs.open(digest) as f:
            while chunk := f.read(CHUNK):
                yield chunk

    headers["Content-Length"] = str(size)
    return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)
