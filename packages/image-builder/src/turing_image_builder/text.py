"""Text helpers for the one-line messages users read: cut at a word, never inside one."""

from __future__ import annotations

ELLIPSIS = "..."


def shorten(text: str, width: int) -> str:
    """``text`` on one line, at most ``width`` characters, cut at a space (``...`` marks a cut).

    A single word longer than ``width`` (a path, a URL) is kept whole: a cut path is useless.
    """
    line = " ".join(text.split())
    if len(line) <= width:
        return line
    room = max(width - len(ELLIPSIS), 1)
    cut = line.rfind(" ", 0, room + 1)
    if cut <= 0:
        end = line.find(" ")
        return line if end < 0 else line[:end] + ELLIPSIS
    return line[:cut].rstrip(" ,;:") + ELLIPSIS
