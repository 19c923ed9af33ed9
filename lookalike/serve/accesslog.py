"""What ``lookalike serve`` logs of each request: method, path (without the query string)
and status; never the client's address or port (a visitor's whereabouts), never the query
string (a key passed as ``?access_token=…`` would land in the log).

uvicorn's own access log, with a filter that rewrites each record before any handler
formats it, so no handler can write what it dropped."""

from __future__ import annotations

import logging
from typing import Any


class PathOnly(logging.Filter):
    """Rewrites uvicorn's access record ``(client, method, path?query, version, status)``
    to ``("-", method, path, version, status)``; a record of another shape loses its
    arguments altogether rather than pass through unread."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            _, method, full_path, version, status = args
            record.args = ("-", method, str(full_path).split("?", 1)[0], version, status)
        else:
            record.msg, record.args = "request (unrecognised access record)", ()
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging set-up (its default), with the access lines as ``INFO:
    "POST /v1/search HTTP/1.1" 200 OK``."""
    from copy import deepcopy

    from uvicorn.config import LOGGING_CONFIG

    config = deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"]["fmt"] = '%(levelprefix)s "%(request_line)s" %(status_code)s'
    config.setdefault("filters", {})["path_only"] = {"()": f"{__name__}.PathOnly"}
    config["handlers"]["access"]["filters"] = ["path_only"]
    return config
