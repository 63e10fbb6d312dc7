"""Image-level figures: size, cold build, rebuild after a server-version change, start to /ping.

For our template image, our baked image and MLflow's stock image (what
``mlflow models build-docker --env-manager local`` writes, on the same local base image), all
built here with the Docker engine. Called by ``bench/run.py --images``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from turing_image_builder.errors import VerifyError
from turing_image_builder.serving_container import run_serving
from turing_image_builder.wheels import build_wheel

ROOT = Path(__file__).resolve().parents[1]
BASE = os.environ.get("BENCH_BASE_IMAGE", "turing-base:bookworm")
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
BIN = Path(sys.executable).parent


TEMPLATE_STARTS = 5
START_TIMEOUT = 120.0
"""Seconds a start may take to its first ``/ping`` 200 before it counts as failed."""


def _bumped_server(work: Path) -> Path:
    """A copy of the server source whose version differs: what a server upgrade looks like."""
    copy = work / "server-bumped"
    shutil.copytree(ROOT / "packages" / "scoring-server", copy, dirs_exist_ok=True)
    about = copy / "src" / "turing_scoring_server" / "__about__.py"
    about.write_text(re.sub(r'"(\d+\.\d+\.\d+)"', r'"\1.post1"', about.read_text()))
    return copy


def _context(work: Path, name: str, args: list[str]) -> Path:
    ctx = work / f"ctx-{name}"
    shutil.rmtree(ctx, ignore_errors=True)
    ca = ["--build-ca-bundle", str(HOST_CA)] if HOST_CA.is_file() else []
    cli = [str(BIN / "turing-image-build"), "build", "--base-image", BASE, "--dockerfile-only"]
    subprocess.run([*cli, str(ctx), *ca, *args], check=True, capture_output=True)
    return ctx


def _stock_context(work: Path, model: Path) -> Path:
    """Exactly what ``mlflow models build-docker --env-manager local`` writes, on our base.

    The only addition is this machine's CA for pip, as one early layer (220 kB), so the image keeps
    MLflow's own layers and sizes: it is measured as MLflow users get it.
    """
    from mlflow.pyfunc.backend import PyFuncBackend

    ctx = work / "ctx-stock"
    shutil.rmtree(ctx, ignore_errors=True)
    PyFuncBackend(config={}, env_manager="local").generate_dockerfile(
        model_uri=str(model), output_dir=str(ctx), base_image=BASE
    )
    if HOST_CA.is_file():
        lines = (ctx / "Dockerfile").read_text().splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("FROM")) + 1
        lines[at:at] = ["COPY bench-ca.pem /tmp/bench-ca.pem", "ENV PIP_CERT=/tmp/bench-ca.pem"]
        (ctx / "Dockerfile").write_text("\n".join(lines) + "\n")
        shutil.copyfile(HOST_CA, ctx / "bench-ca.pem")
    return ctx


def _build(client: Any, ctx: Path, tag: str, nocache: bool) -> float:
    started = time.monotonic()
    client.images.build(path=str(ctx), tag=tag, nocache=nocache, rm=True, forcerm=True)
    return time.monotonic() - started


def _first_ping(client: Any, tag: str, model: Path | None, starts: int) -> dict[str, Any]:
    """``docker run`` to the first ``/ping`` 200, ``starts`` times; failed starts counted.

    Run and waited for by the builder's :func:`run_serving`, so "started" is what ``verify``
    and the tests mean by it.
    """
    timings: list[float] = []
    failures: list[int] = []
    reasons: list[str] = []
    for _ in range(starts):
        started = time.monotonic()
        try:
            with run_serving(client, tag, model=model) as served:
                # Polled every 50 ms, as docs/performance.md's start times were measured.
                if served.wait_until_serving(START_TIMEOUT, interval=0.05) is not None:
                    timings.append(time.monotonic() - started)
                elif served.exited():
                    failures.append(int(served.container.attrs["State"]["ExitCode"]))
                    reasons.append(served.tail(1))
                else:
                    reasons.append(f"no /ping 200 within {START_TIMEOUT:.0f} s")
        except VerifyError as exc:  # exited before the engine published its port
            failures.append(-1)
            reasons.append(str(exc))
    return {
        "starts": starts,
        "answered": len(timings),
        "failed_exit_codes": failures,
        "failure_reasons": sorted(set(reasons)),
        "median_s": round(statistics.median(timings), 2) if timings else None,
        "max_s": round(max(timings), 2) if timings else None,
    }


def measure_images(work: Path, model: Path, starts: int = 20, streak: int = 100) -> dict[str, Any]:
    """Build the three images and measure them; returns a JSON-able dict."""
    import docker

    client = docker.from_env(timeout=1800)
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    try:
        return _measure(client, work, model, starts, streak)
    finally:
        _remove_bench_images(client, started)


def _remove_bench_images(client: Any, started: str) -> None:
    """Remove the ``turing-bench-*`` images and the build stages this run left (no-cache builds
    make new ones every run: about 3 GB a run otherwise stays on the disk)."""
    import docker.errors

    doomed = [i for i in client.images.list() if any(t.startswith("turing-bench-") for t in i.tags)]
    doomed += [
        i
        for i in client.images.list(filters={"dangling": True})
        if i.attrs["Created"][:19] >= started
    ]
    for image in doomed:
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(image.id, force=True, noprune=False)


def _measure(client: Any, work: Path, model: Path, starts: int, streak: int) -> dict[str, Any]:
    wheels = work / "wheels"
    server = build_wheel(ROOT / "packages" / "scoring-server", wheels)
    plugin = build_wheel(ROOT / "examples" / "turing-example-endpoints", wheels)
    common = ["--server-wheel", str(server), "--extra-pip", str(plugin)]
    # A template image installs the model's requirements when it starts: through this machine's
    # TLS interception that needs the CA at run time too.
    runtime_ca = ["--runtime-ca-bundle", str(HOST_CA)] if HOST_CA.is_file() else []
    contexts = {
        "ours-template": _context(work, "template", [*common, *runtime_ca]),
        "ours-baked": _context(work, "baked", [*common, "--model-uri", str(model)]),
        "mlflow-stock": _stock_context(work, model),
    }
    out: dict[str, Any] = {}
    for name, ctx in contexts.items():
        tag = f"turing-bench-{name}:latest"
        cold = _build(client, ctx, tag, nocache=True)
        size = client.images.get(tag).attrs["Size"]
        out[name] = {"size_mb": round(size / 1e6), "cold_build_s": round(cold, 1)}
    bumped = build_wheel(_bumped_server(work), work / "wheels-bumped")
    ctx = _context(
        work,
        "template-bumped",
        ["--server-wheel", str(bumped), "--extra-pip", str(plugin), *runtime_ca],
    )
    out["ours-template"]["rebuild_after_server_change_s"] = round(
        _build(client, ctx, "turing-bench-ours-template:bumped", nocache=False), 1
    )
    for name in contexts:
        mount = model if name == "ours-template" else None
        # Template starts include installing the model's requirements from the index (MLflow's
        # env creation, 10-20 s): a few are enough to show it.
        count = min(starts, TEMPLATE_STARTS) if name == "ours-template" else starts
        out[name]["start_to_ping"] = _first_ping(
            client, f"turing-bench-{name}:latest", mount, count
        )
    if streak:
        out["ours-baked"]["consecutive_starts"] = _first_ping(
            client, "turing-bench-ours-baked:latest", None, streak
        )
    stock = out["mlflow-stock"]["size_mb"]
    out["ours-baked"]["size_vs_stock"] = round(out["ours-baked"]["size_mb"] / stock, 3)
    return out
