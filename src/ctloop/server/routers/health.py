"""``/healthz``: is the server up and its store reachable."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

import ctloop
from ctloop.server.deps import ClientDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(client: ClientDep) -> dict[str, Any]:
    """200 with the store's schema revision when the store answers."""
    revision = client.db.current_revision()
    return {"status": "ok", "version": ctloop.__version__, "schema_revision": revision}
