"""The local MLflow store of `make demo`: serve its UI on 127.0.0.1, and photograph it.

    uv run python -m offline.mlflow_ui serve [--store build/local/mlflow]
    uv run python -m offline.mlflow_ui screenshot [--store ...] [--out docs/images]

A local run logs to `<store>/mlflow.db` (SQLite) with artifacts under
`<store>/artifacts`, through the same step code as in AWS (only the tracking URI
differs). `serve` starts a real `mlflow server` on 127.0.0.1 for that store;
`screenshot` starts one on a free port, opens the newest run's page and its
confusion-matrix artifact in headless Chromium (Debian's `chromium` package:
`apt-get install chromium`), writes the PNGs the README shows, and stops the server.

Exit codes: 0 done; 2 no store yet (run `make demo` first) or no chromium; 3 the
server did not come up.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from offline.pipeline.processes import stop_group

DEFAULT_STORE = Path("build/local/mlflow")
DEFAULT_OUT = Path("docs/images")
STARTUP_SECONDS = 60.0
EXIT_USAGE, EXIT_INTERNAL = 2, 3


class UiError(RuntimeError):
    """The UI cannot be served or photographed; the message says what to do."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def backend_uri(store: Path) -> str:
    return f"sqlite:///{(store / 'mlflow.db').resolve()}"


def serve_command(store: Path, port: int = 5000) -> list[str]:
    """The `mlflow server` command line for `store` on 127.0.0.1:`port`."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_uri(store),
        "--default-artifact-root",
        str((store / "artifacts").resolve()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def server_environment() -> dict[str, str]:
    """This process's environment, without the server's job runner: a second process (a huey
    consumer for GenAI evaluation jobs) that the local UI never uses and that doubled its
    start-up (measured 9-18 s to /health with it, 7 s without)."""
    return {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def ui_hint(store: Path = DEFAULT_STORE) -> str:
    """What the demo prints: the command that opens this store's UI."""
    return (
        f"MLflow UI of the local runs: uv run python -m offline.mlflow_ui serve --store {store}"
        " (then open http://127.0.0.1:5000)"
    )


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:  # noqa: S310 - http://127.0.0.1
            return bool(answer.status == 200)
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_server(store: Path, port: int | None = None) -> Iterator[str]:
    """A real `mlflow server` for `store` in its own process group; yields its base URL."""
    _require_store(store)
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        serve_command(store, port),
        env=server_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise UiError(f"mlflow server for {store} did not start on {url}", EXIT_INTERNAL)
            time.sleep(0.5)
        yield url
    finally:
        stop_group(process)


def newest_run(url: str) -> tuple[str, str, list[str]]:
    """(experiment id, run id, artifact paths) of the newest run, through the REST API."""
    import mlflow  # noqa: PLC0415 - only when photographing

    client = mlflow.MlflowClient(tracking_uri=url)
    experiments = [e for e in client.search_experiments() if e.name != "Default"]
    runs = client.search_runs(
        [e.experiment_id for e in experiments], order_by=["attributes.start_time DESC"]
    )
    if not runs:
        raise UiError("the local MLflow store has no run; run `make demo` first")
    run = runs[0]
    paths = [a.path for a in client.list_artifacts(run.info.run_id)]
    return run.info.experiment_id, run.info.run_id, paths


def photograph(chromium: str, page: str, out: Path, size: str = "1500,1300") -> Path:
    """Render `page` in headless Chromium (JavaScript included) into the PNG `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={size}",
            "--virtual-time-budget=15000",
            f"--screenshot={out.resolve()}",
            page,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


def _require_store(store: Path) -> None:
    if not (store / "mlflow.db").is_file():
        raise UiError(f"{store}/mlflow.db does not exist; run `make demo` first")


def screenshot(store: Path, out_dir: Path) -> list[Path]:
    _require_store(store)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise UiError("no chromium on PATH; install Debian's: apt-get install chromium")
    with running_server(store) as url:
        experiment, run, artifacts = newest_run(url)
        base = f"{url}/#/experiments/{experiment}/runs/{run}"
        shots = [photograph(chromium, base, out_dir / "mlflow-run.png")]
        matrix = next((a for a in artifacts if "confusion" in a and a.endswith(".png")), None)
        if matrix is not None:
            page = f"{base}/artifacts/{matrix}"
            shots.append(photograph(chromium, page, out_dir / "mlflow-confusion-matrix.png"))
    return shots


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("serve", "screenshot"))
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            _require_store(args.store)
            print(f"serving {args.store} on http://127.0.0.1:{args.port} (Ctrl-C stops)")
            os.execve(sys.executable, serve_command(args.store, args.port), server_environment())  # noqa: S606 - becomes the server
        for path in screenshot(args.store, args.out):
            print(f"wrote {path}")
    except UiError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code
    except subprocess.SubprocessError as error:
        print(f"error: chromium failed: {error}", file=sys.stderr)
        return EXIT_INTERNAL
    return 0


if __name__ == "__main__":
    sys.exit(main())
