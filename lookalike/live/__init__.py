"""Live matching from a camera, a video file or a stream (``lookalike webcam``).

One module a job: :mod:`.source` reads frames on a thread, :mod:`.tracker` follows faces
between frames, :mod:`.matcher` embeds and searches in a worker process, :mod:`.overlay`
draws, :mod:`.sinks` shows / writes, and :mod:`.session` runs the loop that ties them.
"""
