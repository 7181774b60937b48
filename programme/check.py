"""`radio24 prompts check [DIR]`: every problem in a prompts folder, with the media it names.

The programme's files and its media are read by separate modules (`programme.files`,
`programme.media`, `programme.music`); the check is the one place that needs them all.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

from programme import media, music
from programme.files import read
from programme.model import Programme


def check_main(argv: list[str], out: TextIO | None = None) -> int:
    """`radio24 prompts check [DIR]`: print each problem as `file:line: message — fix`."""
    out = out or sys.stdout
    root = Path(argv[0] if argv else os.environ.get("RADIO_PROMPTS_DIR", "prompts"))
    programme, problems = read(root)
    if problems or programme is None:
        for p in problems:
            out.write(f"{root / p.file}:{p.line}: {p.message} — {p.fix}\n")
        out.write(f"{len(problems)} problem(s) in {root}\n")
        return 1
    out.write(
        f"{root}: OK — {programme.station.name}, {len(programme.segments)} segments, "
        f"timezone {programme.station.timezone}\n"
    )
    return _check_media(root, programme, out)


def _check_media(root: Path, programme: Programme, out: TextIO) -> int:
    """Bad media is reported here but never keeps the programme off air: it is skipped."""
    if not programme.station.media:
        return 0
    library = media.load_library(root, programme)
    problems = [*library.problems, *media.music_problems(programme, library, root)]
    for p in problems:
        out.write(f"{root / p.file}:{p.line}: {p.message} — {p.fix}\n")
    # Too little music for a share is worth knowing, but it is not a mistake to fix.
    for p in music.capacity_problems(programme, library, root=root):
        out.write(f"{root / p.file}:{p.line}: note: {p.message} — {p.fix}\n")
    out.write(f"{root / programme.station.media}: {media.describe(library)}\n")
    if problems:
        out.write(f"{len(problems)} media problem(s): those files are skipped on air\n")
        return 1
    return 0
