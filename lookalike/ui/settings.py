"""The web app's options: flags of ``lookalike ui`` (and the variables an operator sets for it),
handed to Streamlit's process through the environment and read back by the pages, both
through this module (one spelling of each
variable's name and default, as :mod:`lookalike.serve.settings` for the HTTP API). No
Streamlit import: the CLI reads the defaults for its ``--help``."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import DEFAULT_MAX_UPLOAD_MB, env_flag, env_float, env_int, env_text

KIOSK_IDLE = "LOOKALIKE_KIOSK_IDLE"
MAX_UPLOAD_MB = "LOOKALIKE_UI_MAX_MB"
VISITOR_ONLY = "LOOKALIKE_UI_VISITOR_ONLY"

DEFAULT_IDLE_SECONDS = 90.0
# a visitor's upload: a phone photo is 12-48 MP; anything bigger is not a portrait and costs
# seconds to decode (an operator's ingest takes up to config.DEFAULT_MAX_PIXELS, 100 MP)
VISITOR_MAX_PIXELS = 50_000_000


@dataclass(frozen=True)
class UiSettings:
    kiosk_idle: float = DEFAULT_IDLE_SECONDS  # seconds without a touch before the kiosk starts over
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB  # the largest photo a visitor may upload
    visitor_only: bool = False  # Find, Live and Role models alone: no Explore, no Admin

    def to_env(self) -> dict[str, str]:
        """The variables the web app's process reads back (:func:`idle_seconds` and the others)."""
        return {KIOSK_IDLE: str(self.kiosk_idle), MAX_UPLOAD_MB: str(self.max_upload_mb),
                VISITOR_ONLY: "1" if self.visitor_only else "0"}


# read when needed, not at import: a bad value is a ConfigError naming the variable
def idle_seconds() -> float:
    """Seconds without a touch before the kiosk starts over (``LOOKALIKE_KIOSK_IDLE``)."""
    return env_float(KIOSK_IDLE, DEFAULT_IDLE_SECONDS, "a number of seconds such as 90", minimum=1)


def max_upload_mb() -> int:
    """The largest photo a visitor may upload, in MB (``LOOKALIKE_UI_MAX_MB``)."""
    return env_int(MAX_UPLOAD_MB, DEFAULT_MAX_UPLOAD_MB, "a whole number of megabytes such as 15", minimum=1)


def visitor_only() -> bool:
    """``lookalike ui --visitor-only`` (``LOOKALIKE_UI_VISITOR_ONLY=1``): a kiosk or public
    site serves Find, Live and Role models alone; Explore and Admin do not exist there."""
    return env_flag(VISITOR_ONLY, False)


def max_pixels() -> int:
    """The largest photo a visitor's upload may decode to (``LOOKALIKE_UI_MAX_PIXELS``)."""
    return env_int("LOOKALIKE_UI_MAX_PIXELS", VISITOR_MAX_PIXELS, "a whole number of pixels such as 50000000",
                   minimum=1)


def operator_password() -> str | None:
    """The operator's password for Explore and Admin (``LOOKALIKE_UI_PASSWORD``); an admin
    API key (``lookalike keys create --scope admin``) opens them too."""
    return env_text("LOOKALIKE_UI_PASSWORD")
