"""What a person's name and profile may be: the rules every way in applies.

A person arrives from a corpus folder, a manifest row, a ``--format`` corpus,
``--person``, the HTTP API or the admin page; each checks the same rules, declared here,
at the store's level, since they say what the library keeps (architecture review 56, M8:
they lived in the ingest stage's corpus reader, and the server's schemas, the people verbs
and the admin page imported them from there). A profile is shown to every visitor, so its
fields are bounded and hold no control character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BadPersonName
from .values import normalise_tag

PROFILE_FIELDS = ("display_name", "role", "organisation", "story", "tags",
                  "consent_display", "source_url", "license")
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off", ""}


@dataclass(frozen=True)
class Profile:
    """Self-declared role-model information (a manifest row, the HTTP API, the admin page)."""

    display_name: str | None = None
    role: str | None = None
    organisation: str | None = None
    story: str | None = None
    tags: tuple[str, ...] = ()
    # True agreed, False not agreed (a manifest without it); None never stated: a public
    # corpus's labels (lookalike.ingest.formats), shown as after a folder ingest
    consent_display: bool | None = False
    source_url: str | None = None
    license: str | None = None


# what a profile field may hold: these are shown to every visitor, so they are bounded
# (the columns' widths) and hold no control character but a story's line breaks and tabs
PROFILE_LIMITS = {"display_name": 300, "role": 300, "organisation": 300, "story": 10_000,
                  "source_url": 2_000, "license": 300}
MAX_TAGS, MAX_TAG_LENGTH = 30, 60
PERSON_NAME_LENGTH = 200


def person_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a person's name, or None. The one rule every new name meets,
    wherever it comes from (a folder, a manifest row, a ``--format`` corpus, ``--person``,
    the HTTP API, the admin page): not empty, not ``.`` or ``..``, no path separator (``/``,
    ``\\``) and no control character, at most :data:`PERSON_NAME_LENGTH` characters. A
    name is data, and it also names folders (uploaded photos): none of these may ever
    move a path. Otherwise a corpus's names are kept as written (``O'Brien``). People
    already stored under another name stay readable: only new input is checked."""
    shown = repr(name[:60]) + ("…" if len(name) > 60 else "")
    if not name.strip():
        return "person name is empty"
    if name.strip() in (".", ".."):
        return f"person name {shown} is a folder reference, not a name"
    if len(name) > PERSON_NAME_LENGTH:
        return f"person name {shown} is longer than {PERSON_NAME_LENGTH} characters"
    bad = next((c for c in name if c in "/\\"), None)
    if bad is not None:
        return f"person name {shown} holds the path separator {bad!r}"
    bad = next((c for c in name if ord(c) < 32 or 127 <= ord(c) < 160), None)
    if bad is not None:
        return f"person name {shown} holds the control character U+{ord(bad):04X}"
    return None


def check_person_name(name: str) -> str:
    """A person name given by staff (HTTP API, admin page), or :class:`BadPersonName`. On
    top of :func:`person_name_problem`, staff type one plain path segment: letters,
    digits, ``_ . -`` and spaces, never starting with a dot. Names read from corpus
    folders and manifests are whatever they say, within :func:`person_name_problem`."""
    name = name.strip()
    problem = person_name_problem(name)
    if problem is not None:
        raise BadPersonName(problem)
    if name.startswith(".") or not re.fullmatch(r"[\w .-]+", name):
        raise BadPersonName(f"person name {name[:60]!r} must be 1-{PERSON_NAME_LENGTH} letters, digits, "
                            "spaces, '_', '.' or '-', not starting with '.'")
    return name


def check_profile(profile: Profile) -> Profile:
    """The profile as stored, or ValueError naming the field: bounded lengths, no control
    characters (a story keeps its line breaks and tabs; Windows' CR LF, as a spreadsheet
    writes a multi-line cell, becomes LF), tags normalised."""
    from dataclasses import replace

    if profile.story is not None:
        profile = replace(profile, story=profile.story.replace("\r\n", "\n").replace("\r", "\n"))
    for name, limit in PROFILE_LIMITS.items():
        value = getattr(profile, name)
        if value is None:
            continue
        if len(value) > limit:
            raise ValueError(f"{name} is {len(value)} characters long; at most {limit}")
        allowed = "\n\t" if name == "story" else ""
        bad = next((c for c in value if (ord(c) < 32 or 127 <= ord(c) < 160) and c not in allowed), None)
        if bad is not None:
            raise ValueError(f"{name} holds the control character U+{ord(bad):04X}")
    tags = parse_tags(list(profile.tags))
    if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG_LENGTH or not t for t in tags):
        raise ValueError(f"at most {MAX_TAGS} tags of at most {MAX_TAG_LENGTH} characters each")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for t in tags for c in t):
        raise ValueError("a tag holds a control character")
    return replace(profile, tags=tags)


def parse_tags(value: object) -> tuple[str, ...]:
    """Tags as a JSON list, or one string separated by ``;`` or ``|``; normalised to
    lower-case-with-hyphens (``Women in Engineering`` -> ``women-in-engineering``)."""
    if value in (None, ""):
        return ()
    if isinstance(value, list):
        parts = [str(v) for v in value]
    else:
        parts = str(value).replace("|", ";").split(";")
    return tuple(dict.fromkeys(normalise_tag(p) for p in parts if p.strip()))


def parse_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"consent_display must be true or false, not {value!r}")
