"""The monitor's outputs: `drift_report.json` and `drift_report.png`.

The JSON holds the verdict, the score, each component's histograms and distances, what
was read and what was skipped. The PNG shows the four components, baseline against
current, with the verdict in the title. Both are byte-identical for the same inputs (no
timestamps of their own: the window's bounds come from the job; the PNG's metadata is
pinned).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ml.monitoring.drift import COMPONENTS, DriftResult

REPORT_FILE = "drift_report.json"
PLOT_FILE = "drift_report.png"


def write_json(document: dict[str, Any], output_dir: Path) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / REPORT_FILE
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return path


def write_plot(result: DriftResult, output_dir: Path, title: str) -> Path:
    """A 2x2 bar chart of the components (a component without data says so)."""
    import matplotlib  # noqa: PLC0415 - heavy; only the job that plots pays for it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(2, 2, figsize=(10, 6.5), dpi=80)
    for axis, name in zip(axes.ravel(), COMPONENTS, strict=True):
        component = result.components[name]
        if not component.current:
            axis.text(0.5, 0.5, component.note or "no data", ha="center", va="center", fontsize=9)
            axis.set_axis_off()
            axis.set_title(name)
            continue
        positions = range(len(component.bins))
        axis.bar([p - 0.2 for p in positions], component.baseline, width=0.4, label="baseline")
        axis.bar([p + 0.2 for p in positions], component.current, width=0.4, label="current")
        shown = "n/a" if component.distance is None else f"{component.distance:.3f}"
        axis.set_title(f"{name}: JS distance {shown}", fontsize=10)
        axis.set_ylabel("share of notes", fontsize=8)
        axis.tick_params(labelsize=6)
        if name == "predicted_class":
            axis.set_xticks([])  # forty labels do not fit; the JSON has them
            axis.set_xlabel(f"{len(component.bins)} labels", fontsize=8)
        else:
            axis.set_xticks(list(positions), component.bins, rotation=45, ha="right")
        axis.legend(fontsize=7)
    score = "n/a" if result.score is None else f"{result.score:.3f}"
    figure.suptitle(
        f"{title}: {result.verdict} (score {score}, threshold {result.threshold:g}, "
        f"{result.notes} notes)",
        fontsize=11,
    )
    figure.tight_layout()
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / PLOT_FILE
    figure.savefig(path, format="png", metadata={"Software": None})
    plt.close(figure)
    return path
