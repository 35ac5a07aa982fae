"""`zoo bench --plot FILE.png`: latency against accuracy, one panel per model, one point per artifact (matplotlib)."""
from __future__ import annotations

import io
import math
from pathlib import Path

from ..errors import MissingExtraError

MARKERS = {"eager": "*", "tracing": "o", "scripting": "s", "onnx": "D", "openvino": "v", "export": "^", "aoti": "P"}
COLOURS = {"pytorch": "tab:red", "onnxruntime": "tab:blue", "openvino": "tab:purple", "tensorrt": "tab:green"}


def latency_accuracy(rows: list[dict], out: str | Path, title: str) -> None:
    """One panel per model: median latency (ms, x) against agreement AP50 with eager (y), a point per artifact
    (marker: method, colour: runtime), eager's star at 1.0 and a dashed line at half eager's latency (the speed
    target). An artifact without an agreement figure (eager found nothing >= 0.5 on the photos) is a hollow point at 0,
    and the panel says why. Written atomically: a failed plot leaves no half-written file."""
    try:
        import matplotlib
    except ImportError:
        raise MissingExtraError("zoo bench --plot needs matplotlib, which is not installed: pip install 'zoo[plot]'") \
            from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    from ..core.store import atomic_write
    models = list(dict.fromkeys(r["model"] for r in rows)) or ["(no rows)"]
    ncols = min(3, len(models))
    nrows = math.ceil(len(models) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(6.0, 4.4 * ncols), 3.2 * nrows + 0.8), dpi=120,
                             squeeze=False)
    for ax, model in zip(axes.flat, models):
        _panel(ax, model, [r for r in rows if r["model"] == model])
    for ax in list(axes.flat)[len(models):]:
        ax.set_visible(False)
    handles = [plt.Line2D([], [], linestyle="", marker=m, color="grey", label=k) for k, m in MARKERS.items()]
    handles += [plt.Line2D([], [], linestyle="", marker="o", color=c, label=k) for k, c in COLOURS.items()]
    handles.append(plt.Line2D([], [], linestyle="--", color="grey", label="0.5x eager"))
    fig.tight_layout()
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(handles), 6 * ncols),
               fontsize=7, frameon=False)
    fig.suptitle(f"{title}\nagreement AP50 with eager (package photos) against median latency", y=1.0, va="bottom")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")  # the title and legend outside the panels, never cut off
    plt.close(fig)
    atomic_write(Path(out), buf.getvalue())


def _panel(ax, model: str, rows: list[dict]) -> None:
    missing = False
    for r in rows:
        ms, agreement = r["median_s"] * 1000, r.get("agreement")
        style = {"marker": MARKERS.get(r["method"], "X"), "s": 90 if r["method"] == "eager" else 40, "zorder": 3}
        colour = COLOURS.get(r["runtime"], "black")
        y = agreement["ap50"] if agreement else 0.0
        fill = {"color": colour} if agreement else {"facecolors": "none", "edgecolors": colour}
        missing |= not agreement
        ax.scatter([ms], [y], **fill, **style)
        ax.annotate(r["method"], (ms, y), textcoords="offset points", xytext=(4, 5), fontsize=6, rotation=30)
        if r["method"] == "eager":
            ax.axvline(ms / 2, linestyle="--", color="grey", linewidth=0.8)
    ax.set_title(model, fontsize=8)
    ax.set_ylim(-0.08, 1.15)
    ax.set_xlim(left=0)
    ax.tick_params(labelsize=7)
    ax.set_xlabel("median ms per image", fontsize=7)
    ax.set_ylabel("agreement AP50", fontsize=7)
    ax.grid(True, alpha=0.3)
    if missing:
        ax.text(0.02, 0.1, "hollow: no agreement figure\n(eager finds nothing >= 0.5 on the photos)", fontsize=6,
                transform=ax.transAxes, color="dimgrey")
