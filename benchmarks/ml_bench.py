"""ML benchmarks: definition build incl. SDK import (target < 3 s), local end-to-end run
(target < 60 s), and the default model on the realistic corpus.

    uv run python benchmarks/ml_bench.py [--no-e2e] [--no-build] [--sizes 5000,50000]

Model (ml.data.realistic at each size, one preprocess-data split shared by both):
this template's trainer vs a plain scikit-learn fit (TfidfVectorizer 1-2 grams +
LinearSVC, one `fit`) on the same split, each in a fresh process so peak RSS is its
own: fit time and ratio (target <= 1.0), macro-F1 and accuracy on the test split
(scored by evaluate-model, target: macro-F1 >= the plain fit's), artifact size, peak
RSS. Serving: the real `serve` (gunicorn) on 127.0.0.1 with the first size's model,
one note per request, 200 requests: p50/p99 next to the raw in-process
input_fn + predict_fn + output_fn time of the same notes (target p50 <= 5 ms, HTTP
overhead <= 1.5x raw).

The build is timed in fresh processes (the SDK import is what a user pays for),
twice: as the environment is (PYTHONDONTWRITEBYTECODE=1 on some machines means
every run compiles the SDK's sources) and with a warmed bytecode cache in a
temporary directory, which is the normal developer/CI case.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from ml.data import realistic
from ml.pipeline.code import code_uris
from ml.pipeline.contract import PipelineConfig
from ml.pipeline.definition import definition_json
from ml.serving import inference
from ml.steps import preprocess
from offline.aws import local_aws
from offline.pipeline.runner import StackOutputs, run_local

REPO = Path(__file__).resolve().parents[1]

BUILD = textwrap.dedent(
    """
    import json, sys, time
    fields = json.loads(sys.argv[1])
    started = time.perf_counter()
    from ml.pipeline.contract import PipelineConfig
    from ml.pipeline.definition import definition_json
    definition_json(PipelineConfig(**fields))
    built = time.perf_counter()
    definition_json(PipelineConfig(**{**fields, "name": "promote-code-second"}))
    print(f"{built - started:.3f} {time.perf_counter() - built:.3f}")
    """
)


def example_config() -> PipelineConfig:
    """A dev-like configuration (the shapes the TrainingPipeline component passes)."""
    artifacts = "promote-code-dev-artifacts"
    return PipelineConfig(
        name="promote-code-dev-training",
        role_arn="arn:aws:iam::222222222222:role/promote-code-dev-sagemaker-execution",
        region="eu-west-1",
        data_bucket="promote-code-dev-data",
        artifacts_bucket=artifacts,
        training_image_uri="111111111111.dkr.ecr.eu-west-1.amazonaws.com/promote-code/training"
        "@sha256:" + "ab" * 32,
        code_uris=code_uris(artifacts),
        model_package_group="promote-code-dev-models",
        kms_key_arn="arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    )


def build_times(env: dict[str, str]) -> tuple[float, float]:
    completed = subprocess.run(
        [sys.executable, "-c", BUILD, json.dumps(asdict(example_config()))],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    first, second = completed.stdout.split()
    return float(first), float(second)


def bench_build() -> None:
    plain = dict(os.environ)
    cold = min(build_times(plain) for _ in range(2))
    with tempfile.TemporaryDirectory() as cache:
        cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = cache
        build_times(cached)  # warm the cache
        warm = min(build_times(cached) for _ in range(2))
    source = "compiling sources" if plain.get("PYTHONDONTWRITEBYTECODE") else "as is"
    print(f"definition build incl. SDK import ({source}):  {cold[0]:6.2f} s  (target < 3 s)")
    print(f"definition build incl. SDK import (bytecode cached): {warm[0]:6.2f} s  (target < 3 s)")
    print(f"  a further build in the same process:             {warm[1]:6.2f} s")


FIT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import joblib, pandas as pd
    from ml.steps import evaluate, scoring, train
    kind, data, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    labels = json.loads((data / "train" / "labels.json").read_text())
    test = scoring.read_test(data / "test")
    if kind == "ours":
        metrics = train.train(data / "train", None, out, train.Hyperparameters())
        seconds = metrics["train_seconds"]
        model, _, majority = scoring.load_model(out)
    else:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import Pipeline
        from sklearn.svm import LinearSVC
        frame = train.read_split(data / "train", "train")
        started = time.perf_counter()
        model = Pipeline([("tfidf", TfidfVectorizer(ngram_range=(1, 2))), ("svm", LinearSVC())])
        model.fit(frame["text"].tolist(), frame["label_id"].to_numpy())
        seconds = time.perf_counter() - started
        out.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, out / "model.joblib")
        majority = None
    report = evaluate.evaluate(model, labels, test, majority)
    scores = report["multiclass_classification_metrics"]
    print(json.dumps({
        "seconds": seconds,
        "macro_f1": scores["macro_f1"]["value"],
        "accuracy": scores["accuracy"]["value"],
        "bytes": (out / "model.joblib").stat().st_size,
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (big) parent.
        "peak_rss_mb": next(
            int(line.split()[1]) / 1024
            for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith("VmHWM:")
        ),
    }))
    """
)


def _fit(kind: str, data: Path, out: Path) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, "-c", FIT, kind, str(data), str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(completed.stdout.splitlines()[-1])
    return result


def bench_model(sizes: list[int], scratch: Path) -> Path:
    """Both fits at each size; returns the model directory of the first size (for serving)."""
    print(
        f"{'notes':>6} {'split':>17} {'fit s':>13} {'ratio':>5} {'macro-F1':>13} "
        f"{'accuracy':>13} {'artifact MB':>13} {'peak RSS MB':>13}   (ours / plain)"
    )
    first: Path | None = None
    for size in sizes:
        root = scratch / str(size)
        (root / "in").mkdir(parents=True)
        realistic.generate(size).to_csv(root / "in" / "notes.csv", index=False)
        started = time.perf_counter()
        result = preprocess.preprocess(root / "in", root / "data")
        prep = time.perf_counter() - started
        ours = _fit("ours", root / "data", root / "ours")
        plain = _fit("plain", root / "data", root / "plain")
        split = result["report"]["splits"]
        ratio = ours["seconds"] / plain["seconds"]
        print(
            f"{size:>6} {split['train']:>6}/{split['test']:<5}{prep:4.0f}s "
            f"{ours['seconds']:6.1f}/{plain['seconds']:<6.1f} {ratio:5.2f} "
            f"{ours['macro_f1']:6.3f}/{plain['macro_f1']:<6.3f} "
            f"{ours['accuracy']:6.3f}/{plain['accuracy']:<6.3f} "
            f"{ours['bytes'] / 1e6:6.1f}/{plain['bytes'] / 1e6:<6.1f} "
            f"{ours['peak_rss_mb']:6.0f}/{plain['peak_rss_mb']:<6.0f}",
            flush=True,
        )
        first = first or root
    assert first is not None
    return first


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _raw_ms(model: inference.LoadedModel, body: str) -> float:
    """In-process input_fn + predict_fn + output_fn of one request body, in ms."""
    started = time.perf_counter()
    inference.output_fn(inference.predict_fn(inference.input_fn(body, inference.JSON), model))
    return (time.perf_counter() - started) * 1000


def _served_ms(port: int, body: str) -> float:
    """One POST /invocations on a new connection (as a fresh client makes it), in ms."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/invocations", body, {"Content-Type": inference.JSON})
    response = connection.getresponse()
    response.read()
    connection.close()
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status == 200, response.status
    return elapsed


def bench_serving(root: Path, requests: int = 200) -> None:
    test = pd.read_csv(root / "data" / "test" / "test.csv", keep_default_na=False)
    notes = (test["text"].tolist() * (requests // len(test) + 1))[:requests]
    model = inference.model_fn(root / "ours")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "SM_MODEL_DIR": str(root / "ours"),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SERVING_BIND_HOST": "127.0.0.1",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "ml.serving.server"], cwd=REPO, env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        raw: list[float] = []
        served: list[float] = []
        # Interleaved, one note in-process then the same note over HTTP, so that both
        # see the same load on a shared machine (run one after the other, a change in
        # load between the two runs skews their ratio either way).
        for note in notes:
            body = json.dumps({"instances": [note]})
            raw.append(_raw_ms(model, body))
            served.append(_served_ms(port, body))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    p50, p99 = _percentile(served, 0.5), _percentile(served, 0.99)
    raw50 = statistics.median(raw)
    print(
        f"serving ({requests} requests, one note each, gunicorn on 127.0.0.1): "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (target p50 <= 5 ms); raw predict p50 "
        f"{raw50:.2f} ms, p99 {_percentile(raw, 0.99):.2f} ms; HTTP/raw p50 {p50 / raw50:.2f}x"
    )


def bench_local_run() -> None:
    config = example_config()
    definition = definition_json(config)
    outputs = StackOutputs(
        config.data_bucket,
        config.artifacts_bucket,
        config.role_arn,
        config.model_package_group,
        config.region,
    )
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        with local_aws(config.region, outputs.account_id) as aws:
            result = run_local(definition, outputs, aws, Path(scratch), echo=_quiet)
        elapsed = time.perf_counter() - started
    steps = ", ".join(f"{s.name} {s.seconds:.1f}s" for s in result.steps if s.status != "Skipped")
    print(f"local end-to-end run (moto + 6 steps):  {elapsed:6.2f} s  (target < 60 s)")
    print(f"  {steps}")
    print(f"  accuracy {result.accuracy:.3f}, {result.model_package_arn} {result.approval_status}")


def _quiet(_: str) -> None:
    """Step progress is not part of the measurement output."""


def main() -> None:
    sizes = [5000, 50000]
    if "--sizes" in sys.argv:
        sizes = [int(v) for v in sys.argv[sys.argv.index("--sizes") + 1].split(",")]
    if "--no-build" not in sys.argv:
        bench_build()
    with tempfile.TemporaryDirectory() as scratch:
        first = bench_model(sizes, Path(scratch))
        bench_serving(first)
    if "--no-e2e" not in sys.argv:
        bench_local_run()


if __name__ == "__main__":
    main()
