"""``turing-image-build verify IMAGE``: run an image the way SageMaker does and check its contract.

Each check is one row: SageMaker's documented container requirements (port 8080, the bind-to-port
label, ``/ping`` within the start-up window and while busy, ``/invocations``, a 6 MB payload,
unknown headers ignored, exit within 30 s of SIGTERM, an exec-form entrypoint). The model is
mounted read-only at ``/opt/ml/model`` as SageMaker mounts it; traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from turing_scoring_server import contract

from .errors import VerifyError
from .serving_container import run_serving

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
PING_BUSY_LIMIT = 2.0
"""SageMaker's health check gives /ping 2 s; it must hold while every worker is busy."""
SIGTERM_LIMIT = 30.0
"""SageMaker sends SIGKILL 30 s after SIGTERM."""
BIG_BODY = 6 * 1024 * 1024
"""SageMaker real-time endpoints accept payloads up to 6 MB."""
BIND_PORT = 8123
EXAMPLE = "serving_input_example.json"


@dataclass(frozen=True)
class CheckResult:
    """One row of the report."""

    name: str
    status: str
    detail: str


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    seconds: float


def http(
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Response:
    """One request; HTTP errors are responses, connection errors have status 0."""
    request = urllib.request.Request(url, data=body, headers=headers or {})
    if body is not None:
        request.add_header("Content-Type", "application/json")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return Response(resp.status, resp.read(), time.monotonic() - started)
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.read(), time.monotonic() - started)
    except (OSError, urllib.error.URLError):
        return Response(0, b"", time.monotonic() - started)


def big_payload(example: bytes, size: int = BIG_BODY) -> bytes:
    """The input example's rows repeated until the body is at least ``size`` bytes."""
    data = json.loads(example)
    rows: list[Any] | None = None
    holder: dict[str, Any] = data
    if isinstance(data.get("dataframe_split"), dict):
        holder, key = data["dataframe_split"], "data"
    elif isinstance(data.get("dataframe_records"), list):
        key = "dataframe_records"
    elif isinstance(data.get("inputs"), list):
        key = "inputs"
    elif isinstance(data.get("instances"), list):
        key = "instances"
    else:
        raise VerifyError("cannot grow the input example: not dataframe_split/records/inputs")
    rows = list(holder[key])
    if not rows:
        raise VerifyError("the input example has no rows to repeat")
    one = len(json.dumps(rows[0])) + 2
    holder[key] = rows * (size // (one * len(rows)) + 1)
    return json.dumps(data).encode()


def _example(client: Any, image: str, model: Path | None) -> bytes | None:
    if model is not None:
        path = model / EXAMPLE
        return path.read_bytes() if path.is_file() else None
    # Copied out of a created (never started) container: no process, no log stream to race.
    container = client.containers.create(image, entrypoint=["true"])
    try:
        chunks, _ = container.get_archive(f"{contract.MODEL_PATH}/{EXAMPLE}")
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
            member = archive.extractfile(EXAMPLE)
            return member.read() if member else None
    except Exception:  # noqa: BLE001 - no example in the image: those checks are skipped
        return None
    finally:
        container.remove(force=True)


def check_entrypoint(config: dict[str, Any]) -> CheckResult:
    """Exec form: the server is PID 1 and receives SIGTERM itself."""
    entry = config.get("Entrypoint")
    if not entry:
        return CheckResult(
            "entrypoint in exec form", FAIL, "no ENTRYPOINT; SageMaker runs IMAGE serve"
        )
    if entry[:2] in (["/bin/sh", "-c"], ["sh", "-c"]):
        return CheckResult("entrypoint in exec form", FAIL, f"shell form: {entry}")
    return CheckResult("entrypoint in exec form", PASS, json.dumps(entry)[:120])


def _saturated_ping(base: str, payload: bytes, concurrency: int) -> CheckResult:
    name = f"/ping < {PING_BUSY_LIMIT:.0f} s with workers busy"
    in_flight = [0]
    lock = threading.Lock()

    def load() -> None:
        with lock:
            in_flight[0] += 1
        http(f"{base}/invocations", payload, timeout=120)
        with lock:
            in_flight[0] -= 1

    threads = [threading.Thread(target=load, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    worst, busy_samples = 0.0, 0
    for _ in range(5):
        with lock:
            busy = in_flight[0]
        r = http(f"{base}/ping", timeout=10)
        worst = max(worst, r.seconds if r.status == 200 else 10.0)
        busy_samples += busy > 0
        time.sleep(0.2)
    for t in threads:
        t.join(timeout=120)
    detail = f"worst /ping {worst:.2f} s over 5 tries with {concurrency} requests sent"
    if worst >= PING_BUSY_LIMIT:
        return CheckResult(name, FAIL, detail)
    if busy_samples == 0:
        return CheckResult(name, SKIP, detail + "; load ended first, give --slow-payload")
    return CheckResult(name, PASS, detail + f"; busy during {busy_samples}/5 tries")


def run(
    client: Any,
    image: str,
    model: Path | None = None,
    slow_payload: Path | None = None,
    startup_timeout: float = 480.0,
    host_port: int | None = None,
) -> list[CheckResult]:
    """Every check, in report order. Raises :class:`VerifyError` only when nothing can run.

    ``host_port`` publishes the container on that port of 127.0.0.1 (both runs, one after the
    other); ``None`` lets the engine pick a free one.
    """
    try:
        config = client.images.get(image).attrs["Config"]
    except Exception as exc:
        raise VerifyError(f"cannot inspect {image}: {exc}") from exc
    results = [check_entrypoint(config)]
    label = (config.get("Labels") or {}).get(contract.SAGEMAKER_BIND_TO_PORT_LABEL)
    example = _example(client, image, model)

    with run_serving(client, image, model=model, host_port=host_port) as serving:
        container, base = serving.container, serving.url
        ready = serving.wait_until_serving(startup_timeout)
        if ready is None:
            why = f"no /ping 200 within {startup_timeout:.0f} s: {serving.tail()}"
            results.append(CheckResult(f"listens on {contract.PUBLIC_PORT}", FAIL, why))
            return results
        results.append(CheckResult(f"listens on {contract.PUBLIC_PORT}", PASS, base))
        results.append(
            CheckResult(
                "first /ping 200 within start-up window",
                PASS if ready < startup_timeout else FAIL,
                f"{ready:.1f} s (limit {startup_timeout:.0f} s)",
            )
        )
        if example is None:
            results.append(
                CheckResult("/invocations input example", SKIP, f"model has no {EXAMPLE}")
            )
        else:
            first = http(f"{base}/invocations", example)
            results.append(
                CheckResult(
                    "/invocations input example",
                    PASS if first.status == 200 else FAIL,
                    f"HTTP {first.status} in {first.seconds:.2f} s",
                )
            )
            odd = http(
                f"{base}/invocations",
                example,
                headers={
                    "X-Unknown-Header": "1",
                    "X-Amzn-SageMaker-Unknown": "x",
                    "Foo-Bar": "baz",
                },
            )
            same = odd.status == first.status and odd.body == first.body
            results.append(
                CheckResult(
                    "unknown request headers ignored",
                    PASS if same else FAIL,
                    f"HTTP {odd.status}" + ("" if same else ", answer differs"),
                )
            )
            big = big_payload(example)
            r = http(f"{base}/invocations", big, timeout=120)
            results.append(
                CheckResult(
                    "6 MB body accepted",
                    PASS if r.status == 200 else FAIL,
                    f"{len(big) / 1e6:.1f} MB -> HTTP {r.status} in {r.seconds:.1f} s",
                )
            )
        if slow_payload is not None or example is not None:
            payload = slow_payload.read_bytes() if slow_payload else big_payload(example or b"")
            results.append(_saturated_ping(base, payload, concurrency=16))
        else:
            results.append(
                CheckResult(
                    f"/ping < {PING_BUSY_LIMIT:.0f} s with workers busy", SKIP, "no payload"
                )
            )
        container.kill(signal="SIGTERM")
        started = time.monotonic()
        try:
            status = container.wait(timeout=SIGTERM_LIMIT + 5)
            took = time.monotonic() - started
            code = status.get("StatusCode")
            ok = took <= SIGTERM_LIMIT
            detail = f"exited {code} after {took:.1f} s"
        except Exception:  # noqa: BLE001 - the SDK's read timeout: still running
            ok, detail = False, f"still running {SIGTERM_LIMIT + 5:.0f} s after SIGTERM"
        results.append(
            CheckResult(
                f"exits within {SIGTERM_LIMIT:.0f} s of SIGTERM", PASS if ok else FAIL, detail
            )
        )

    name = f"listens on {contract.ENV_BIND_TO_PORT}"
    if label != "true":
        results.append(
            CheckResult(name, SKIP, f"no {contract.SAGEMAKER_BIND_TO_PORT_LABEL}=true label")
        )
        return results
    env = {contract.ENV_BIND_TO_PORT: str(BIND_PORT)}
    with run_serving(
        client, image, model=model, env=env, inner_port=BIND_PORT, host_port=host_port
    ) as serving:
        ready = serving.wait_until_serving(startup_timeout)
        detail = f"{contract.ENV_BIND_TO_PORT}={BIND_PORT}: " + (
            f"/ping 200 after {ready:.1f} s"
            if ready is not None
            else f"no answer: {serving.tail()}"
        )
        results.append(CheckResult(name, PASS if ready is not None else FAIL, detail))
    return results


REPORT_WIDTH = 80
"""The report fits an 80-column terminal: a check per line, its detail wrapped at words below."""


def report_lines(results: list[CheckResult], image: str, width: int = REPORT_WIDTH) -> list[str]:
    """The report as plain lines of at most ``width`` characters (a long word stays whole)."""
    lines = [f"SageMaker contract: {image}"]
    indent = " " * 6
    for r in results:
        lines.append(f"{r.status:<4}  {r.name}")
        lines += textwrap.wrap(
            r.detail,
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
    failed = sum(r.status == FAIL for r in results)
    lines.append(
        f"{len(results)} checks: {failed} failed, {sum(r.status == SKIP for r in results)} skipped"
    )
    return lines


def print_table(results: list[CheckResult], image: str, console: Console) -> None:
    """The report, a check per line (coloured on a terminal), fitting 80 columns."""
    colour = {PASS: "green", FAIL: "red", SKIP: "yellow"}
    width = min(console.width, REPORT_WIDTH) if console.is_terminal else REPORT_WIDTH
    for line in report_lines(results, image, width):
        status = line[:4]
        if status in colour and line[4:6] == "  ":
            console.print(f"[{colour[status]}]{status}[/]{escape(line[4:])}", highlight=False)
        else:
            console.print(escape(line), highlight=False, soft_wrap=True)
