"""The HTTP API's routes, one router (a :class:`~.common.Topic`) per topic (health, search,
people, pictures, admin). A route gets the process's :class:`~lookalike.serve.service.Service` and
its :class:`~lookalike.serve.keys.Caller` from dependencies (:mod:`.common`); the
:class:`~lookalike.serve.guard.Gate` learns which key each route needs from the same
dependencies, so a new route is guarded by declaring its caller."""

from __future__ import annotations

from .admin import router as admin
from .health import router as health
from .people import router as people
from .pictures import router as pictures
from .search import router as search

# in this order: the OpenAPI document lists the paths as they are declared
TOPICS = (health, search, people, pictures, admin)

