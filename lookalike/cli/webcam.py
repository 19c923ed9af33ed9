"""``lookalike webcam``: live matching from a camera, a video file or a stream."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import JsonOpt, app, one_line_errors, opened, output, print_json, terminal, writing
from ._options import AnalysisOptions, LibraryOptions, grouped


@app.command()
@grouped
def webcam(
    source: Annotated[str, typer.Option(
        "--source", "-s", help="Camera index (0, 1, ...), video file or stream URL (anything OpenCV opens).")] = "0",
    window: Annotated[Optional[bool], typer.Option(
        "--window/--no-window",
        help="Show an OpenCV window (q or Esc quits) [default: when this OpenCV build and machine can].")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the annotated video (.mp4, .avi, .mkv).")] = None,
    jsonl: Annotated[Optional[Path], typer.Option(
        "--jsonl", help="Write one JSON line per match update (t, track, bbox, person, similarity, "
                        "verdict, ...); - for standard output.")] = None,
    analysis: AnalysisOptions = AnalysisOptions(),
    k: Annotated[int, typer.Option("-k", "--k", help="Matches per face.")] = 3,
    realtime: Annotated[bool, typer.Option(
        "--realtime/--no-realtime",
        help="Video files: play at their own pace, dropping frames when behind (default), or process "
             "every frame as fast as possible, waiting for each match.")] = True,
    lib: LibraryOptions = LibraryOptions(),
    as_json: JsonOpt = False,
) -> None:
    """Who do I look like, live: track faces, match them continuously, never freeze the picture.

    Nothing of the visitor is stored unless --out or --jsonl asks for it."""
    with one_line_errors():
        from ..errors import ConfigError, NoDisplay
        from ..live.session import LiveOptions, LiveSession
        from ..live.sinks import JsonlOut, VideoOut, Window, gui_problem
        from ..live.source import parse_source
        from ..processes import live_library

        if k < 1:
            raise ConfigError("-k must be at least 1")
        if as_json and jsonl is not None and str(jsonl) == "-":
            raise ConfigError("--json and --jsonl - both want standard output; give --jsonl a file")
        output(None if jsonl is None or str(jsonl) == "-" else jsonl, "--jsonl")
        problem = gui_problem() if window is not False else None
        if window is None:  # a window where one can open; else the files asked for, else a clear no
            window = problem is None
            if problem is not None and out is None and jsonl is None:
                raise NoDisplay(problem)
        elif window and problem is not None:
            raise NoDisplay(problem)
        say = terminal(stderr=True)
        options = LiveOptions(k=k, analyzer=analysis.chosen(), realtime=realtime)
        with opened(lib) as library:
            session = LiveSession(live_library(library), parse_source(source), options, [])  # opens the source
            try:
                if window:
                    session.sinks.append(Window())
                if jsonl is not None:
                    with writing(jsonl, "--jsonl"):
                        session.sinks.append(JsonlOut(jsonl))
                if out is not None:
                    session.sinks.append(VideoOut(out, session.reader.fps))
            except BaseException:
                session.close()
                raise
            say.print(f"loading the matcher for {source} ...")
            try:
                loaded = session.start()
            except KeyboardInterrupt:
                raise typer.Exit(130) from None
            say.print(f"live: {loaded['faces']} library faces ({loaded['space']}); "
                      + ("q or Esc in the window, or Ctrl-C, stops" if window else "Ctrl-C stops"))
            stats = session.run()
        summary = stats.summary()
        if as_json:
            print_json(summary)
        else:
            say.print(f"{'stopped' if stats.interrupted else 'done'}: {summary['frames_shown']} frames shown at "
                      f"{summary['display_fps']} fps (longest gap {summary['longest_gap_ms']} ms), "
                      f"{summary['match_updates']} match updates ({summary['updates_per_s']}/s, median "
                      f"{summary['match_latency_p50_ms']} ms)"
                      + (f"; video {out}" if out else "") + (f"; matches {jsonl}" if jsonl else ""))
        if stats.errors:
            say.print(f"[bold red]warning:[/] {stats.errors} match requests failed; the first: {stats.first_error}",
                      markup=True, soft_wrap=True)
