"""`zoo bench --plot FILE.png`: latency against accuracy, one point per artifact, one colour per model (matplotlib)."""
from __future__ import annotations

import io
from pathlib import Path

from ..errors import MissingExtraError


def latency_accuracy(rows: list[dict], out: str | Path, title: str) -> None:
    """Median latency (ms, x) against agreement AP50 with eager (y) of every row that has one; eager itself at 1.0.
    Written atomically: a failed plot leaves no half-written file."""
    try:
        import matplotlib
    except ImportError:
        raise MissingExtraError("zoo bench --plot needs matplotlib, which is not installed: pip install 'zoo[plot]'") \
            from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    from ..core.store import atomic_write
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    models = list(dict.fromkeys(r["model"] for r in rows))
    colours = plt.get_cmap("tab10")
    for k, model in enumerate(models):
        points = [(r["median_s"] * 1000, r["agreement"]["ap50"], f"{r['runtime']}/{r['method']}")
                  for r in rows if r["model"] == model and r.get("agreement")]
        if not points:
            continue
        xs, ys, labels = zip(*points)
        ax.scatter(xs, ys, color=colours(k % 10), label=model, s=40, zorder=3)
        for x, y, label in points:
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
    ax.set_xscale("log")  # artifacts of one model differ by factors, models by orders of magnitude
    ax.set_xlabel("median latency per image (ms, log scale, lower is better)")
    ax.set_ylabel("agreement AP50 with eager (package photos)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if models:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(Path(out), buf.getvalue())
