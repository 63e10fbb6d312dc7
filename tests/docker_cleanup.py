"""Keep the Docker engine's disk use bounded across test sessions.

Every session re-tags the same test images (``turing-e2e-*``), so the images of the previous
session become dangling, and each lean build leaves its untagged build stage behind. Left alone
that is one to two GB per session: a CI machine that keeps its engine between runs fills its disk
in a few dozen runs (seen here: 74 GB, then ``No space left on device`` in pip). At the end of a
session we therefore remove the dangling images that already existed when it started: what this
session built (and the build stages it made) stays as the next session's layer cache.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

_STARTED: dt.datetime | None = None
_USED = False


def _engine() -> Any | None:
    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
        return client
    except Exception:
        return None


def _created(image: Any) -> dt.datetime:
    """The image's creation time (Docker prints RFC 3339 with nanoseconds; keep microseconds)."""
    raw: str = image.attrs["Created"]
    head, _, frac = raw.rstrip("Z").partition(".")
    micro = (frac + "000000")[:6]
    return dt.datetime.fromisoformat(f"{head}.{micro}+00:00")


def session_started() -> None:
    """Remember when the session began (engine clock and ours agree: same machine)."""
    global _STARTED
    _STARTED = dt.datetime.now(dt.timezone.utc)


def mark_used() -> None:
    """Called by the engine fixture: only sessions that build images clean up after earlier ones
    (a unit-test run beside an end-to-end run must not delete the build stages it is using)."""
    global _USED
    _USED = True


def remove_stale_dangling() -> tuple[int, int]:
    """Remove dangling images created before this session; return (count, bytes) removed.

    An image still used by a container or by a child image is left in place (Docker refuses),
    which is what we want: only garbage goes.
    """
    if not _USED or _STARTED is None:
        return 0, 0
    engine = _engine()
    if engine is None:
        return 0, 0
    import docker.errors

    count = size = 0
    for image in engine.images.list(filters={"dangling": True}):
        if _created(image) >= _STARTED:
            continue
        try:
            engine.images.remove(image.id, noprune=False)
        except docker.errors.APIError:
            continue
        count += 1
        size += int(image.attrs.get("Size", 0))
    return count, size
