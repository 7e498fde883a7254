"""Drift monitor benchmark: throughput on captured records, and one day at 10 requests/s.

    uv run python benchmarks/monitor_bench.py [--records 36000] [--full-day] [--workers 1,2]

A model is trained on the realistic corpus (1500 notes) with the pipeline's step code;
2000 unseen notes go through the real serving code (input_fn -> predict_fn -> output_fn,
the demo's request mix: one or two notes a request, JSON or CSV, some CSV answers) and
become SageMaker capture records. Those records are repeated, with new event ids and
times, into capture files of 600 records (a minute at 10 requests/s) under the
`<endpoint>/<variant>/yyyy/mm/dd/hh/` layout. The monitor's analysis
(`ml.monitoring.analysis.analyse`: parse, split requests with input_fn, tokenize, bin,
merge) then runs over them with 1 and with 2 worker processes, followed by the report and
the plot (`ml.monitoring.job.run` minus AWS). Repeating notes is fair to the analysis:
every record is parsed and tokenized in full; only the word cache is warmer than on
real traffic (its misses are one hash per new word).

One day at 10 requests/s is 864,000 records. By default one hour (36,000 records) is
measured and the day extrapolated (x24, stated as such); `--full-day` writes and
analyses all 864,000 (about 2.5 GB of capture files, several minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from ml.monitoring import baseline as baselines
from ml.monitoring import report
from ml.monitoring.analysis import analyse, available_cores
from ml.serving.inference import model_fn
from offline.monitoring import START, scenario_notes, serve, train_model

DAY_RECORDS = 864_000
RECORDS_PER_FILE = 600


def write_capture(root: Path, pool: list[dict[str, object]], records: int) -> list[Path]:
    """`records` capture records (the pool, repeated) in files of RECORDS_PER_FILE."""
    files = []
    step = timedelta(seconds=0.1)  # 10 requests/s
    for first in range(0, records, RECORDS_PER_FILE):
        when = START + step * first
        directory = root / "ep" / "AllTraffic" / when.strftime("%Y/%m/%d/%H")
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{when:%M-%S}-000-{first:07d}.jsonl"
        with path.open("w") as out:
            for number in range(first, min(first + RECORDS_PER_FILE, records)):
                item = json.loads(json.dumps(pool[number % len(pool)]))
                item["eventMetadata"] = {
                    "eventId": f"bench-{number:07d}",
                    "inferenceTime": (START + step * number).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
                    + "Z",
                }
                out.write(json.dumps(item) + "\n")
        files.append(path)
    return files


def measure(
    files: list[Path], baseline: baselines.Baseline, workers: int, out: Path
) -> dict[str, float]:
    started = time.perf_counter()
    accumulator, stats = analyse(files, baseline, workers=workers)
    analysed = time.perf_counter()
    result = accumulator.result()
    report.write_json(result.as_dict(), out)
    report.write_plot(result, out, "bench")
    done = time.perf_counter()
    return {
        "records": stats.records,
        "notes": result.notes,
        "analyse_s": analysed - started,
        "total_s": done - started,
        "records_per_s": stats.records / (analysed - started),
        "score": result.score or 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=36_000)
    parser.add_argument("--full-day", action="store_true")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args(argv)
    records = DAY_RECORDS if args.full_day else args.records
    workers = [int(w) for w in args.workers.split(",")]
    print(f"cores available: {available_cores()}")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        model_dir, evaluation = train_model(root / "train", 1500, 11)
        baseline = baselines.load(evaluation / baselines.BASELINE_FILE)
        pool = serve(model_fn(model_dir), scenario_notes("unchanged", 2000, 211), 3, START)
        print(f"setup (train, serve {len(pool)} requests): {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        files = write_capture(root / "capture", pool, records)
        size = sum(f.stat().st_size for f in files) / 1e6
        print(
            f"wrote {records} records in {len(files)} files ({size:.0f} MB) in "
            f"{time.perf_counter() - started:.1f} s"
        )
        for count in workers:
            found = measure(files, baseline, count, root / f"out-{count}")
            line = (
                f"workers={count}: {found['records']:.0f} records ({found['notes']:.0f} notes) "
                f"analysed in {found['analyse_s']:.1f} s = {found['records_per_s']:.0f} records/s; "
                f"with report and plot {found['total_s']:.1f} s"
            )
            if records == DAY_RECORDS:
                line += f"; one day at 10 requests/s: {found['total_s']:.0f} s (measured)"
            else:
                day = DAY_RECORDS / found["records_per_s"]
                line += (
                    f"; one day at 10 requests/s ({DAY_RECORDS} records): ~{day:.0f} s "
                    f"(~{day / 60:.1f} min, extrapolated from {records} records)"
                )
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
