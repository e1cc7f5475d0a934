"""What endpoints get from the app: the local client the server wraps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

if TYPE_CHECKING:
    from ctloop.client import Client


def get_client(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


ClientDep = Annotated["Client", Depends(get_client)]
