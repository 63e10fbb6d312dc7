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
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile

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


def wheel_bytes(version: str, skops: bool = True) -> bytes:
    """The wheel's bytes; deterministic (fixed timestamps), so the build layer caches."""
    dist_info = f"mlflow-{version}.dist-info"
    metadata = (
        "\n".join(
            ["Metadata-Version: 2.1", "Name: mlflow", f"Version: {version}", f"Summary: {SUMMARY}"]
            + [f"Requires-Dist: {r}" for r in requirements(version, skops)]
        )
        + "\n"
    )
    files = {
        f"{dist_info}/METADATA": metadata,
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: turing-image-builder\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
        f"{dist_info}/top_level.txt": "",
    }
    record = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, text in files.items():
            data = text.encode()
            wheel.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        wheel.writestr(
            zipfile.ZipInfo(f"{dist_info}/RECORD", date_time=(2020, 1, 1, 0, 0, 0)),
            "\n".join(record) + "\n",
        )
    return buffer.getvalue()
