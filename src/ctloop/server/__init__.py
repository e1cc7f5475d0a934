"""Layer 5: the control-plane REST server (``ctloop server``): the local backend over HTTP."""

from ctloop.server.app import create_app

__all__ = ["create_app"]
