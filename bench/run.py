"""Side-by-side benchmark: MLflow's own scoring server and ours, same model, same run.

Usage (from the repository root, after ``bash scripts/setup-env.sh``)::

    .venv/bin/python bench/run.py [--duration 4] [--quick] [--images]

Servers, all with the same number of workers on this machine, loaded by wrk on 127.0.0.1:

- ``mlflow``: ``mlflow models serve`` (uvicorn), what ``mlflow models serve`` users run;
- ``mlflow+nginx``: the same behind MLflow's own packaged nginx.conf, as its stock container runs;
- ``ours``: ``turing-scoring-server serve`` (nginx in front of gunicorn);
- ``ours-no-nginx``: ``turing-scoring-server serve --no-nginx``.

Writes ``bench/results/latest.json`` and ``bench/results/latest.png`` and prints the tables.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROW = [5.1, 3.5, 1.4, 0.2]
WORKERS = 2
ONE_ROW = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [ROW]}})


@dataclass
class Load:
    """One wrk run's figures."""

    server: str
    case: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class Report:
    """Everything one run measured."""

    machine: dict[str, Any]
    loads: list[Load] = field(default_factory=list)
    ping_while_busy: dict[str, dict[str, float]] = field(default_factory=dict)
    plugin_path: list[Load] = field(default_factory=list)
    floor_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    images: dict[str, Any] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def payloads(work: Path) -> dict[str, tuple[Path, str]]:
    """Request bodies: 1, 100 and 10,000 rows as ``dataframe_split``, and 100 rows of CSV."""
    bodies: dict[str, tuple[Path, str]] = {}
    for rows in (1, 100, 10_000):
        path = work / f"split-{rows}.json"
        path.write_text(json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [ROW] * rows}}))
        bodies[f"json-{rows}"] = (path, "application/json")
    csv = work / "rows-100.csv"
    csv.write_text(
        ",".join(COLUMNS) + "\n" + "\n".join(",".join(map(str, ROW)) for _ in range(100))
    )
    bodies["csv-100"] = (csv, "text/csv")
    return bodies


def wrk_script(work: Path, body: Path, content_type: str, headers: dict[str, str]) -> Path:
    script = work / f"{body.stem}-{abs(hash((content_type, tuple(headers.items()))))}.lua"
    lines = [
        'wrk.method = "POST"',
        f'wrk.headers["Content-Type"] = "{content_type}"',
        *(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()),
        f'local f = io.open("{body}", "rb"); wrk.body = f:read("*all"); f:close()',
    ]
    script.write_text("\n".join(lines) + "\n")
    return script


PLUGIN_ROUNDS = 5
"""Interleaved rounds for the plugin-path comparison; medians reported."""
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(
    url: str, script: Path | None, concurrency: int, duration: float
) -> tuple[float, float, float, int]:
    """Requests/s, p50 and p99 in ms, and failed requests (non-2xx, socket errors, timeouts)."""
    argv = [
        "wrk",
        f"-t{min(concurrency, 2)}",
        f"-c{concurrency}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "--timeout",
        "30s",
    ]
    if script is not None:
        argv += ["-s", str(script)]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # Anchored: the thread-stats line's "+/- Stdev" column (e.g. "88.50%") also holds "50%".
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in m.groups())
    return rps, p50, p99, errors


def wait_ping(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url + "/ping", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} gave no /ping 200 in {timeout} s")


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def mlflow_nginx_conf(work: Path, public: int, upstream: int) -> Path:
    """MLflow's own packaged nginx.conf, with its ports and log paths moved for this machine."""
    import mlflow.models

    text = (Path(mlflow.models.__file__).parent / "container/scoring_server/nginx.conf").read_text()
    text = text.replace("listen 8080", f"listen {public}").replace(
        "127.0.0.1:8000", f"127.0.0.1:{upstream}"
    )
    text = text.replace("/var/log/nginx/error.log", "stderr").replace(
        "/var/log/nginx/access.log", "off"
    )
    text = text.replace("access_log off combined;", "access_log off;")
    text = text.replace("pid /tmp/nginx.pid;", f"pid {work}/mlflow-nginx.pid;")
    conf = work / "mlflow-nginx.conf"
    conf.write_text(text)
    return conf


@contextlib.contextmanager
def server(name: str, model: Path, work: Path) -> Iterator[str]:
    """Start one of the compared servers; yield its base URL."""
    port = free_port()
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", PYTHONPATH=str(ROOT / "bench"))
    log = work / f"{name}.log"
    with contextlib.ExitStack() as stack:
        if name.startswith("mlflow"):
            inner = free_port() if name == "mlflow+nginx" else port
            argv = [
                str(BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                str(model),
                "-p",
                str(inner),
                "-w",
                str(WORKERS),
                "--env-manager",
                "local",
            ]
            proc = stack.enter_context(process(argv, env, log))
            if name == "mlflow+nginx":
                wait_ping(f"http://127.0.0.1:{inner}", proc)
                conf = mlflow_nginx_conf(work, port, inner)
                nginx = shutil.which("nginx") or "/usr/sbin/nginx"
                proc = stack.enter_context(
                    process([nginx, "-c", str(conf)], env, work / "mlflow-nginx.log")
                )
        else:
            env["TURING_ENDPOINTS"] = "bench_plugin:blueprint"
            argv = [
                str(BIN / "turing-scoring-server"),
                "serve",
                "-m",
                str(model),
                "-p",
                str(port),
                "-w",
                str(WORKERS),
            ]
            if name == "ours-no-nginx":
                argv.append("--no-nginx")
            proc = stack.enter_context(process(argv, env, log))
        url = f"http://127.0.0.1:{port}"
        wait_ping(url, proc)
        yield url


def ping_while_busy(url: str, script: Path, samples: int = 100) -> dict[str, float]:
    """``/ping`` latency, one at a time, while wrk keeps every worker busy with big requests."""
    load = threading.Thread(
        target=run_wrk, args=(url + "/invocations", script, 16, 8.0), daemon=True
    )
    load.start()
    time.sleep(1.5)
    timings = []
    session = requests.Session()
    for _ in range(samples):
        started = time.perf_counter()
        try:
            ok = session.get(url + "/ping", timeout=5).status_code == 200
        except requests.RequestException:
            ok = False
        timings.append((time.perf_counter() - started) * 1000 if ok else 5000.0)
        time.sleep(0.02)
    load.join()
    # wrk stops sending, but the workers still hold queued 10,000-row requests: let them drain so
    # the next measurement starts from an idle server.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        started = time.perf_counter()
        session.post(
            url + "/invocations", data=ONE_ROW, headers={"Content-Type": "application/json"}
        )
        if time.perf_counter() - started < 0.05:
            break
        time.sleep(0.5)
    timings.sort()
    return {
        "p50_ms": statistics.median(timings),
        "p99_ms": timings[int(len(timings) * 0.99) - 1],
        "max_ms": timings[-1],
    }


def floor(model: Path, bodies: dict[str, tuple[Path, str]]) -> dict[str, dict[str, float]]:
    """In-process cost per request: ``model.predict`` alone, and MLflow's whole ``invocations``."""
    import mlflow.pyfunc
    from mlflow.pyfunc import scoring_server

    pyfunc = mlflow.pyfunc.load_model(str(model))
    schema = pyfunc.metadata.get_input_schema()
    out = {}
    for case, (path, content_type) in bodies.items():
        data = path.read_bytes()
        parsed = scoring_server.invocations  # same code both servers run
        frame = None
        n = 20 if "10000" in case else 300
        for _ in range(3):
            parsed(data, content_type, pyfunc, schema)
        started = time.perf_counter()
        for _ in range(n):
            parsed(data, content_type, pyfunc, schema)
        whole = (time.perf_counter() - started) / n * 1000
        if content_type == "application/json":
            frame = scoring_server.infer_and_parse_data(json.loads(data), schema)
        else:
            frame = scoring_server.parse_csv_input(path.open(), schema)
        started = time.perf_counter()
        for _ in range(n):
            pyfunc.predict(frame)
        out[case] = {
            "predict_ms": (time.perf_counter() - started) / n * 1000,
            "invocations_ms": whole,
        }
    return out


def table(title: str, headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    body = "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return f"\n{title}\n{line}\n{'-' * len(line)}\n{body}"


def render(report: Report) -> str:
    by = {(x.server, x.case, x.concurrency): x for x in report.loads}
    rows = []
    for (srv, case, conc), x in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        base = by.get(("mlflow", case, conc))
        stock = by.get(("mlflow+nginx", case, conc))
        rows.append(
            [
                case,
                str(conc),
                srv,
                f"{x.rps:.0f}",
                f"{x.p50_ms:.1f}",
                f"{x.p99_ms:.1f}",
                str(x.errors),
                f"{x.rps / base.rps:.2f}" if base and base.rps else "-",
                f"{x.rps / stock.rps:.2f}" if stock and stock.rps else "-",
            ]
        )
    text = table(
        "Throughput and latency (wrk on 127.0.0.1)",
        [
            "payload",
            "conc",
            "server",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "x mlflow",
            "x mlflow+nginx",
        ],
        rows,
    )
    text += table(
        "/ping while every worker is busy (10,000-row requests at concurrency 16)",
        ["server", "p50 ms", "p99 ms", "max ms"],
        [
            [s, f"{v['p50_ms']:.1f}", f"{v['p99_ms']:.1f}", f"{v['max_ms']:.1f}"]
            for s, v in report.ping_while_busy.items()
        ],
    )
    if report.plugin_path:
        plain = report.plugin_path[0].rps
        text += table(
            "Plugin path (ours, 1-row, concurrency 8)",
            ["route", "req/s", "p50 ms", "p99 ms", "vs /invocations"],
            [
                [
                    x.case,
                    f"{x.rps:.0f}",
                    f"{x.p50_ms:.1f}",
                    f"{x.p99_ms:.1f}",
                    f"{x.rps / plain:.3f}",
                ]
                for x in report.plugin_path
            ],
        )
    text += table(
        "Floor: in-process cost per request (ms)",
        ["payload", "model.predict", "MLflow invocations()"],
        [
            [c, f"{v['predict_ms']:.2f}", f"{v['invocations_ms']:.2f}"]
            for c, v in report.floor_ms.items()
        ],
    )
    if report.images:
        text += "\n\nImages\n" + json.dumps(report.images, indent=2)
    return text


def plot(report: Report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = sorted({(x.case, x.concurrency) for x in report.loads}, key=lambda c: (c[0], c[1]))
    servers = sorted({x.server for x in report.loads})
    by = {(x.server, x.case, x.concurrency): x.rps for x in report.loads}
    fig, ax = plt.subplots(figsize=(12, 5))
    width = 0.8 / len(servers)
    for i, srv in enumerate(servers):
        ax.bar(
            [j + i * width for j in range(len(cases))],
            [by.get((srv, c, n), 0) for c, n in cases],
            width,
            label=srv,
        )
    ax.set_xticks(
        [j + 0.4 - width / 2 for j in range(len(cases))],
        [f"{c}\nc={n}" for c, n in cases],
        fontsize=7,
    )
    ax.set_ylabel("requests/s")
    ax.set_yscale("log")
    ax.set_title("Scoring throughput, same model and workers, wrk on 127.0.0.1")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument(
        "--quick", action="store_true", help="1-row and 10,000-row payloads at concurrency 8 only"
    )
    parser.add_argument(
        "--images", action="store_true", help="also measure images (needs a Docker engine)"
    )
    parser.add_argument("--starts", type=int, default=20, help="docker run starts per image")
    parser.add_argument("--streak", type=int, default=100, help="consecutive starts, ours baked")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not installed (Debian: apt-get install wrk)")

    sys.path.insert(0, str(ROOT / "examples"))
    from train_iris import train  # type: ignore[import-not-found]

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    report = Report(
        machine={
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "workers": WORKERS,
            "commit": commit,
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )
    with tempfile.TemporaryDirectory(prefix="turing-bench-") as tmp:
        work = Path(tmp)
        model = train(work / "model")
        bodies = payloads(work)
        cases = ["json-1", "json-10000"] if args.quick else list(bodies)
        concurrencies = [8] if args.quick else [1, 8, 32]
        report.floor_ms = floor(model, bodies)
        for name in ("mlflow", "mlflow+nginx", "ours", "ours-no-nginx"):
            print(f"bench: {name}", file=sys.stderr, flush=True)
            with server(name, model, work) as url:
                for case in cases:
                    body, content_type = bodies[case]
                    script = wrk_script(work, body, content_type, {})
                    run_wrk(url + "/invocations", script, 8, 1.0)  # warm-up
                    for conc in concurrencies:
                        rps, p50, p99, errors = run_wrk(
                            url + "/invocations", script, conc, args.duration
                        )
                        report.loads.append(Load(name, case, conc, rps, p50, p99, errors))
                big = wrk_script(work, *bodies["json-10000"], {})
                report.ping_while_busy[name] = ping_while_busy(url, big)
                if name == "ours":
                    one, ctype = bodies["json-1"]
                    routes = [
                        ("/invocations", url + "/invocations", {}),
                        ("/bench/predict (plugin)", url + "/bench/predict", {}),
                        (
                            "/invocations routed to /bench/predict",
                            url + "/invocations",
                            {"X-Amzn-SageMaker-Custom-Attributes": "route=/bench/predict"},
                        ),
                    ]
                    # Interleaved rounds, medians kept: a 5 % comparison needs more than one
                    # back-to-back sample each on a noisy 2-core machine.
                    runs: dict[str, list[tuple[float, float, float, int]]] = {}
                    for _ in range(PLUGIN_ROUNDS):
                        for label, target, headers in routes:
                            script = wrk_script(work, one, ctype, headers)
                            runs.setdefault(label, []).append(
                                run_wrk(target, script, 8, args.duration / 2)
                            )
                    for label, samples in runs.items():
                        rps, p50, p99 = (statistics.median(x[i] for x in samples) for i in range(3))
                        errors = sum(x[3] for x in samples)
                        report.plugin_path.append(Load(name, label, 8, rps, p50, p99, errors))
                    rps, p50, p99, errors = run_wrk(url + "/turing", None, 8, args.duration)
                    report.plugin_path.append(Load(name, "GET /turing", 8, rps, p50, p99, errors))
        if args.images:
            from images import measure_images  # type: ignore[import-not-found]

            report.images = measure_images(work, model, args.starts, args.streak)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(asdict(report), indent=2) + "\n")
    plot(report, args.output.with_suffix(".png"))
    text = render(report)
    args.output.with_suffix(".txt").write_text(text.lstrip() + "\n")
    print(text)
    outputs = ", ".join(str(args.output.with_suffix(s)) for s in (".json", ".png", ".txt"))
    print(f"\nbench: wrote {outputs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
