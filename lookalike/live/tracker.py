"""A small IoU face tracker: which detection in this frame is which person on screen.

Matching a face costs ~80 ms (embedding + search); a video shows a frame every 33 ms. So a
face is embedded when its track appears and then only every ``refresh`` seconds, and the
overlay follows the track's box in between. Tracks are matched greedily by box overlap
(intersection over union, best pairs first); a detection that overlaps no track opens a
new one; a track unseen for ``max_missing`` seconds is closed.

Boxes cannot tell two people apart when one steps in exactly where the other stood (or a
video cuts between them), so the matcher compares each new embedding of a track with its
memory and the caller calls :meth:`Tracker.renew` when the face model says "another person".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..faces.detect import iou

if TYPE_CHECKING:
    import numpy as np

    from .matcher import MatchUpdate

Box = tuple[int, int, int, int]  # x, y, w, h



@dataclass
class Track:
    id: int
    box: Box
    last_seen: float
    score: float = 0.0  # the detector's confidence for the latest box
    landmarks: tuple | None = None  # the latest detection's five landmarks (the arcface aligner's input)
    last_matched: float | None = None  # when its face was last embedded and searched
    match: MatchUpdate | None = None  # the matcher's latest answer for this face
    pending: bool = False  # a match request is on its way: do not ask twice
    vector: np.ndarray | None = None  # memory of the face: decayed sum of its embeddings (see live.matcher)
    vector_t: float = 0.0  # source time of the newest embedding in that memory


@dataclass
class Tracker:
    min_iou: float = 0.3
    max_missing: float = 1.0  # seconds a track survives without a detection
    refresh: float = 2.0  # seconds between two matches of the same track
    tracks: list[Track] = field(default_factory=list)
    _next_id: int = 1

    def update(self, boxes: list[Box], now: float, scores: list[float] | None = None,
               landmarks: list | None = None) -> list[Track]:
        """Assign this frame's detections to tracks; returns the live tracks."""
        scores = scores if scores is not None else [0.0] * len(boxes)
        landmarks = landmarks if landmarks is not None else [None] * len(boxes)
        pairs = sorted(((iou(t.box, b), ti, bi) for ti, t in enumerate(self.tracks) for bi, b in enumerate(boxes)),
                       reverse=True)
        used_tracks: set[int] = set()
        used_boxes: set[int] = set()
        for overlap, ti, bi in pairs:
            if overlap < self.min_iou:
                break
            if ti in used_tracks or bi in used_boxes:
                continue
            used_tracks.add(ti)
            used_boxes.add(bi)
            track = self.tracks[ti]
            track.box, track.last_seen, track.score, track.landmarks = boxes[bi], now, scores[bi], landmarks[bi]
        for bi, box in enumerate(boxes):
            if bi not in used_boxes:
                self.tracks.append(Track(self._next_id, box, now, scores[bi], landmarks[bi]))
                self._next_id += 1
        self.tracks = [t for t in self.tracks if now - t.last_seen <= self.max_missing]
        return list(self.tracks)

    def due(self, now: float, seen_within: float = 0.0) -> list[Track]:
        """Tracks that need a (new) match: seen at most ``seen_within`` s ago, not waiting
        for an answer, and never matched or matched ``refresh`` s ago; never-matched
        first, so a new face gets its answer before an old one is refreshed."""
        waiting = [t for t in self.tracks if now - t.last_seen <= seen_within and not t.pending and
                   (t.last_matched is None or now - t.last_matched >= self.refresh)]
        return sorted(waiting, key=lambda t: (t.last_matched is not None, t.last_matched or 0.0))

    def get(self, track_id: int) -> Track | None:
        return next((t for t in self.tracks if t.id == track_id), None)

    def renew(self, track: Track) -> int:
        """The face in ``track`` is someone else now: same box, new id, no match yet."""
        track.id = self._next_id
        self._next_id += 1
        track.match = None
        track.vector = None
        return track.id
