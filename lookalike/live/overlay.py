"""Drawing on a frame: a box and label per tracked face, fps and match latency in a corner.

OpenCV's Hershey fonts are ASCII-only, so names are folded to ASCII ("José" -> "Jose")
rather than drawn as question marks; drawing stays at well under a millisecond a frame.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import numpy as np

from ..query.search import Verdict

if TYPE_CHECKING:
    from .matcher import MatchUpdate
    from .tracker import Track

# BGR colours by verdict; a track still waiting for its first answer is white
COLOURS: dict[Verdict | None, tuple[int, int, int]] = {
    Verdict.same_person: (80, 200, 60), Verdict.lookalike: (0, 200, 255), Verdict.weak: (160, 160, 160),
    None: (255, 255, 255)}
FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class Hud:
    fps: float
    match_ms: float | None  # latency of the latest answer
    updates_per_s: float
    tracks: int


def ascii_text(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def label_lines(update: MatchUpdate | None, titles: dict[str, str] | None = None) -> list[str]:
    """What is written above a face box; ``titles`` maps person keys to display names."""
    if update is None:
        return ["matching..."]
    if update.error is not None:
        return ["no answer (see log)"]
    best = update.best
    if best is None:
        return ["no match"]
    name = (titles or {}).get(best.person or "", best.person or "(unnamed)")
    lines = [f"{ascii_text(name)}  {best.similarity:.2f}  {best.verdict.replace('_', ' ')}"]
    e = update.estimate
    if e is not None:
        lines.append(f"age ~{e.age:.0f}  {e.dominant_gender}  {e.dominant_emotion}")
    return lines


def draw(bgr: np.ndarray, tracks: Iterable[Track], hud: Hud, titles: dict[str, str] | None = None) -> np.ndarray:
    """``bgr`` with every track's box and label and the HUD drawn on it (in place)."""
    import cv2

    for track in tracks:
        update = track.match
        verdict = update.best.verdict if update is not None and update.best is not None else None
        colour = COLOURS.get(verdict, COLOURS[None])
        x, y, w, h = track.box
        cv2.rectangle(bgr, (x, y), (x + w, y + h), colour, 2)
        lines = label_lines(update, titles)
        below = y - 8 - 18 * len(lines) < 26  # no room above the box (under the HUD): write below it
        for i, text in enumerate(lines if below else reversed(lines)):
            ty = y + h + 20 + 18 * i if below else y - 8 - 18 * i
            cv2.putText(bgr, text, (x, ty), FONT, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(bgr, text, (x, ty), FONT, 0.5, colour, 1, cv2.LINE_AA)
    latency = "-" if hud.match_ms is None else f"{hud.match_ms:.0f} ms"
    corner = f"{hud.fps:4.1f} fps  match {latency}  {hud.updates_per_s:.1f} upd/s  faces {hud.tracks}"
    cv2.rectangle(bgr, (0, 0), (8 + 8 * len(corner), 22), (0, 0, 0), -1)
    cv2.putText(bgr, corner, (6, 16), FONT, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return bgr
