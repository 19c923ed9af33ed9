"""The HTTP API (``lookalike serve``): FastAPI on uvicorn over the same library verbs as
the CLI. ``app`` builds the application, ``schemas`` types every answer and error,
``problems`` turns the library's typed errors into problem+json, ``guard`` checks keys,
scopes, rate and request size, ``settings`` reads the server's options."""
