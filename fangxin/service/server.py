"""Serving the app under gunicorn, the production WSGI server."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from fangxin.startup import freeze_startup_heap


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """Gunicorn configured from code, serving an already built app."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        """Keep the app and gunicorn options."""
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        """Copy our options into gunicorn's config."""
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if "control_socket_disable" in self.cfg.settings:
            # gunicorn >= 24 opens a control socket under $HOME by default; we manage no workers.
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Flask:
        """Return the WSGI app."""
        return self.application


def _post_fork_for(app: Flask) -> Any:
    def post_fork(_server: Any, _worker: Any) -> None:
        # The app was built (and its pool may hold connections) before the fork: a worker must
        # not share its parent's sockets, so it drops the inherited pool without closing it.
        app.extensions["fangxin"].engine.dispose(close=False)

    return post_fork


def serve(app: Flask, host: str, port: int, workers: int, threads: int) -> None:
    """Run gunicorn in the foreground until SIGTERM/SIGINT."""
    freeze_startup_heap()
    GunicornServer(
        app,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread" if threads > 1 else "sync",
            "accesslog": "-",
            "graceful_timeout": 10,
            "timeout": 30,
            "post_fork": _post_fork_for(app),
        },
    ).run()
