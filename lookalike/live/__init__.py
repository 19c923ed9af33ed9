"""Live matching from a camera or a video (issue 6, in progress): the pieces that keep the
picture fluid — a face tracker so each person is embedded when they appear and refreshed
now and then, not on every frame."""
