"""A metadata-only ``mlflow`` wheel that stands for the full distribution in lean images.

A model's requirements say ``mlflow==X``; the full distribution brings the tracking server, its
UI, pyarrow, matplotlib, sqlalchemy... about 800 MB that serving never imports. The ``mlflow``
*module* is in ``mlflow-skinny``. This wheel is named ``mlflow``, has version X, holds no code,
and requires ``mlflow-skinny==X`` plus the few packages full MLflow brings that a pyfunc model
needs at load time (pandas, numpy, and skops for scikit-learn models saved in MLflow 3's default
format). So ``pip install -r requirements.txt`` finds ``mlflow==X`` satisfied and installs
nothing more, and MLflow's own env managers keep working unchanged.

Not included, on purpose: pyarrow (only MLflow's parquet input needs it: add it with
``--extra-pip pyarrow``) and everything of the tracking server. ``--full-mlflow`` skips the shim.

**A version without its skinny twin** (MLflow 3.18.0 was published as ``mlflow`` only, whose
metadata requires ``mlflow-skinny==3.18.0`` and ``mlflow-tracing==3.18.0``): :func:`make_twin`
runs *inside the build* (this file is copied into the context and run as a script: stdlib only)
and writes the missing ``mlflow-skinny==X`` wheel from what the index has: the code of
``mlflow==X``'s own wheel, minus what skinny never ships (``SKINNY_LEAVES_OUT``), with the
requirements of the newest released skinny. In ``--full-mlflow`` images the stand-ins are
metadata-only (the full wheel brings the code), plus ``mlflow-tracing==X``. pip then installs
``mlflow==X`` (or the lean shim) from the index and these with ``--find-links``, so every
requirement is met by a real distribution and ``pip check`` stays clean.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path

SUMMARY = "Metadata-only stand-in for mlflow in lean serving images (see turing-image-builder)"


def requirements(version: str, skops: bool = True) -> list[str]:
    """What the stand-in requires for MLflow ``version``: its skinny twin and the load-time deps.

    ``skops`` (which brings scikit-learn and scipy) only when a scikit-learn model saved in the
    skops format may be served: template images, or a baked model that is one.
    """
    major = int(version.split(".", 1)[0])
    if major >= 3:
        return [f"mlflow-skinny=={version}", "numpy<3", "pandas<4", *(["skops<1"] if skops else [])]
    # MLflow 2.x caps pandas and numpy below 3; its scoring server imports Flask and its
    # container runs gunicorn (legacy images), both brought by the full distribution.
    return [f"mlflow-skinny=={version}", "numpy<3", "pandas<3", "Flask<4", "gunicorn<24"]


def filename(version: str) -> str:
    return f"mlflow-{version}-py3-none-any.whl"


SKINNY_LEAVES_OUT = ("mlflow/server/js/", "mlflow/utils/model_catalog/")
"""What ``mlflow-skinny`` leaves out of ``mlflow``'s files (measured: 3.17.2's two wheels differ by
exactly these, 29 MB, plus the legacy nginx.conf only MLflow < 2.21 reads): the tracking UI's
JavaScript and the model catalog data, neither read when serving."""

_DATE = (2020, 1, 1, 0, 0, 0)
_WHEEL_FILE = (
    "Wheel-Version: 1.0\nGenerator: turing-image-builder\nRoot-Is-Purelib: true\n"
    "Tag: py3-none-any\n"
)


def wheel_bytes(version: str, skops: bool = True) -> bytes:
    """The lean ``mlflow`` stand-in's bytes; deterministic (fixed timestamps), so the layer
    caches."""
    metadata = _metadata("mlflow", version, SUMMARY, requirements(version, skops))
    return _wheel("mlflow", version, {}, metadata)


def _metadata(name: str, version: str, summary: str, requires: list[str]) -> str:
    head = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", f"Summary: {summary}"]
    return "\n".join(head + [f"Requires-Dist: {r}" for r in requires]) + "\n"


def _wheel(
    name: str,
    version: str,
    files: Mapping[str, bytes],
    metadata: str,
    extra_info: Mapping[str, str] | None = None,
) -> bytes:
    """A ``py3-none-any`` wheel of ``files`` (path -> bytes) with the given METADATA.

    Entries are stored, not deflated: the wheels live for one build step (or are metadata only),
    and the lean shim's bytes stay what they were, so existing layer caches still hit.
    """
    dist_info = f"{_normalise(name)}-{version}.dist-info"
    info = {"METADATA": metadata, "WHEEL": _WHEEL_FILE, "top_level.txt": "", **(extra_info or {})}
    entries = {**files, **{f"{dist_info}/{k}": v.encode() for k, v in info.items()}}
    record = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        for path, data in entries.items():
            wheel.writestr(zipfile.ZipInfo(path, date_time=_DATE), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        wheel.writestr(
            zipfile.ZipInfo(f"{dist_info}/RECORD", date_time=_DATE), "\n".join(record) + "\n"
        )
    return buffer.getvalue()


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def twin_filename(name: str, version: str) -> str:
    return f"{_normalise(name)}-{version}-py3-none-any.whl"


def _one_wheel(folder: Path, name: str, version: str) -> Path:
    found = sorted(folder.glob(f"{_normalise(name)}-{version}-*.whl"))
    if len(found) != 1:
        raise SystemExit(f"mlflow_shim: expected one {name}=={version} wheel in {folder}")
    return found[0]


def _dist_info_text(wheel: zipfile.ZipFile, name: str, version: str, file: str) -> str:
    path = f"{_normalise(name)}-{version}.dist-info/{file}"
    return wheel.read(path).decode() if path in wheel.namelist() else ""


_DROPPED_FIELDS = ("License-File:", "Dynamic:", "Description-Content-Type:")


def twin_metadata(like_metadata: str, like: str, version: str) -> str:
    """``mlflow-skinny==like``'s METADATA as ``mlflow-skinny==version``: requirements kept.

    Only the ``Version`` and ``Summary`` header lines change; the description body (MLflow's
    README) and the fields naming files the stand-in does not carry (license file, ``Dynamic``)
    are dropped.
    """
    head, _, _ = like_metadata.partition("\n\n")
    lines = []
    for line in head.splitlines():
        if line.startswith(_DROPPED_FIELDS):
            continue
        if line.startswith("Version:"):
            line = f"Version: {version}"
        elif line.startswith("Summary:"):
            line = (
                f"Summary: mlflow-skinny {version} rebuilt by turing-image-builder: mlflow "
                f"{version}'s code, mlflow-skinny {like}'s requirements"
            )
        lines.append(line)
    return "\n".join(lines) + "\n"


def make_twin(folder: Path, version: str, like: str, code: bool) -> list[Path]:
    """Write the stand-in wheels for MLflow ``version`` into ``folder``; return their paths.

    ``folder`` holds what ``pip download --no-deps`` fetched: ``mlflow-skinny==like`` and, with
    ``code``, ``mlflow==version``. The fetched wheels are removed afterwards, so ``--find-links
    folder`` offers pip the stand-ins only.
    """
    like_wheel = _one_wheel(folder, "mlflow-skinny", like)
    with zipfile.ZipFile(like_wheel) as wheel:
        metadata = twin_metadata(
            _dist_info_text(wheel, "mlflow-skinny", like, "METADATA"), like, version
        )
    made: list[Path] = []
    if code:
        full_wheel = _one_wheel(folder, "mlflow", version)
        with zipfile.ZipFile(full_wheel) as wheel:
            info = f"{_normalise('mlflow')}-{version}.dist-info/"
            files = {
                n: wheel.read(n)
                for n in wheel.namelist()
                if not n.startswith(info)
                and not n.startswith(SKINNY_LEAVES_OUT)
                and not n.endswith("/")
            }
            extra = {"top_level.txt": "mlflow\n"}
            entry_points = _dist_info_text(wheel, "mlflow", version, "entry_points.txt")
            if entry_points:
                extra["entry_points.txt"] = entry_points
        data = _wheel("mlflow-skinny", version, files, metadata, extra)
        full_wheel.unlink()
    else:
        data = _wheel("mlflow-skinny", version, {}, metadata)
        # Full mlflow==X also requires mlflow-tracing==X: tracing's code is part of skinny's
        # and its requirements are a subset of skinny's, so the stand-in needs only skinny.
        tracing = _metadata(
            "mlflow-tracing", version, "Stand-in: mlflow-tracing's code and requirements are in "
            "mlflow-skinny", [f"mlflow-skinny=={version}"],
        )  # fmt: skip
        made.append(folder / twin_filename("mlflow-tracing", version))
        made[-1].write_bytes(_wheel("mlflow-tracing", version, {}, tracing))
    made.append(folder / twin_filename("mlflow-skinny", version))
    made[-1].write_bytes(data)
    like_wheel.unlink()
    return made


def main(argv: list[str]) -> None:
    """``python mlflow_shim.py FOLDER VERSION LIKE [--code]``: run by the build, see make_twin."""
    code = "--code" in argv
    args = [a for a in argv if a != "--code"]
    if len(args) != 3:
        raise SystemExit("usage: python mlflow_shim.py FOLDER VERSION LIKE [--code]")
    for path in make_twin(Path(args[0]), args[1], args[2], code):
        print(f"mlflow_shim: wrote {path.name} ({path.stat().st_size // 1000} kB)")


if __name__ == "__main__":
    main(sys.argv[1:])
