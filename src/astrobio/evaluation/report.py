"""`astrobio report RUN`: one self-contained HTML page (figures embedded as PNG) of a trained run.

Reads what the other commands wrote: RUN/history.jsonl (train), RUN/metrics.json (evaluate),
RUN/predictions.csv (predict --catalog), and example spectra from the run's store.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path

import numpy as np

from astrobio.data.storage import RealDataStorage
from astrobio.io import atomic_write
from astrobio.world import habitable
from astrobio.world.types import CLASS_NAMES, MODALITIES

CLASS_LABELS = tuple(c.replace("_", " ") for c in CLASS_NAMES)  # for display


def _fig_to_img(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_history(run_dir: Path) -> list[dict]:
    path = run_dir / "history.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fig_training_curves(history: list[dict]) -> str:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    train = [h for h in history if any(k.startswith("train/") for k in h)]
    for key in sorted({k for h in train for k in h if k.startswith("train/loss")}):
        pts = [(h["step"], h[key]) for h in train if key in h and h[key] is not None]
        if pts:
            axes[0].plot(*zip(*pts), label=key.split("/", 1)[1], lw=1)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("optimizer step")
    axes[0].set_title("training losses")
    axes[0].legend(fontsize=6, ncol=2)
    val = [h for h in history if "val/macro_f1" in h]
    if val:
        axes[1].plot([h["step"] for h in val], [h["val/macro_f1"] for h in val], "o-", label="val macro-F1")
        if "val/accuracy" in val[0]:
            axes[1].plot([h["step"] for h in val], [h["val/accuracy"] for h in val], "s-", label="val accuracy")
    axes[1].set_ylim(0, 1)
    axes[1].set_xlabel("optimizer step")
    axes[1].set_title("validation")
    axes[1].legend()
    return _fig_to_img(fig)


def fig_confusion(cm) -> str:
    plt = _plt()
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(3), CLASS_LABELS, rotation=20)
    ax.set_yticks(range(3), CLASS_LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix (test)")
    return _fig_to_img(fig)


def fig_reliability(before: dict, after: dict) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    for curve, label in ((before, "before"), (after, "after temperature scaling")):
        c = np.array(curve["confidence"], float)
        a = np.array(curve["accuracy"], float)
        ok = np.isfinite(c) & np.isfinite(a)
        ax.plot(c[ok], a[ok], "o-", label=label)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("reliability diagram")
    ax.legend(fontsize=8)
    return _fig_to_img(fig)


def fig_by_transits(strata: dict) -> str:
    plt = _plt()
    order = [k for k in ("no spectrum", "1-5 transits", "6-20 transits", ">20 transits") if k in strata]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.bar(np.arange(len(order)) - 0.2, [strata[k]["accuracy"] for k in order], 0.4, label="accuracy")
    ax.bar(np.arange(len(order)) + 0.2, [strata[k]["macro_f1"] for k in order], 0.4, label="macro-F1")
    ax.set_xticks(range(len(order)), [f"{k}\n(n={strata[k]['n']})" for k in order], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title("model vs number of transits")
    ax.legend()
    return _fig_to_img(fig)


def fig_comparison(rows: list[tuple[str, float, float]], title: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(rows) + 1.2))
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [r[1] for r in rows], 0.4, label="accuracy")
    ax.barh(y + 0.2, [r[2] for r in rows], 0.4, label="macro-F1")
    ax.set_yticks(y, [r[0] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_title(title)
    ax.legend(loc="lower right")
    return _fig_to_img(fig)


def fig_attribution(weights_by_class: dict) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    bottom = np.zeros(len(weights_by_class))
    names = list(weights_by_class)
    for m in MODALITIES:
        vals = np.array([weights_by_class[c].get(m, 0.0) for c in names])
        ax.bar(names, vals, bottom=bottom, label=m)
        bottom += vals
    ax.set_ylabel("mean modality weight")
    ax.set_title("per-modality attribution (test)")
    ax.legend(fontsize=8)
    return _fig_to_img(fig)


def fig_spectra(examples: list[tuple[str, np.ndarray]]) -> str:
    """Examples binned to ~PRISM-like resolution (inverse-variance weighted), offset for clarity."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for k, (label, spec) in enumerate(examples):
        wl, depth, sigma = (np.asarray(spec[:, j], np.float64) for j in range(3))
        edges = np.geomspace(wl.min(), wl.max(), 61)
        idx = np.clip(np.digitize(wl, edges) - 1, 0, 59)
        w = 1 / sigma**2
        den = np.bincount(idx, w, 60)
        ok = den > 0
        mean = np.bincount(idx, w * depth, 60)[ok] / den[ok]
        centre = np.sqrt(edges[:-1] * edges[1:])[ok]
        offset = -k * 1.5 * np.ptp(mean)
        ax.errorbar(centre, mean - np.median(mean) + offset, yerr=1 / np.sqrt(den[ok]), fmt="o-", ms=3, lw=1,
                    label=label)
    for wl0, gas in ((0.76, "O2"), (1.4, "H2O"), (2.3, "CH4"), (3.3, "CH4"), (4.3, "CO2"), (9.6, "O3")):
        ax.axvline(wl0, color="grey", lw=0.5, ls=":")
        ax.text(wl0, ax.get_ylim()[1], gas, fontsize=7, ha="center", va="bottom")
    ax.set_xscale("log")
    ax.set_xlabel("wavelength (um)")
    ax.set_ylabel("binned transit depth - median (ppm, offset)")
    ax.set_title("example spectra with and without biosignatures (60 log-spaced bins)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    return _fig_to_img(fig)


def fig_hz_diagram(predictions: list[dict]) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    s = np.array([float(p["instellation_searth"]) for p in predictions])
    teff = np.array([float(p["star_teff_k"]) for p in predictions])
    prob = np.array([float(p["p_habitable"]) + float(p["p_inhabited"]) for p in predictions])
    sc = ax.scatter(s, teff, c=prob, cmap="viridis", vmin=0, vmax=1, s=12, edgecolors="none")
    grid = np.linspace(2600, 7200, 100)
    lim = habitable.seff_limits(grid, np.ones_like(grid))
    for key, style in (("runaway_greenhouse", "r-"), ("maximum_greenhouse", "b-"), ("recent_venus", "r:"),
                       ("early_mars", "b:")):
        ax.plot(np.asarray(lim[key]), grid, style, lw=1, label=key.replace("_", " "))
    for name in ("Earth", "Mars", "Venus"):
        ax.plot([{"Earth": 1.0, "Mars": 0.43, "Venus": 1.91}[name]], [5772], "k*", ms=8)
        ax.annotate(name, ({"Earth": 1.0, "Mars": 0.43, "Venus": 1.91}[name], 5772), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlim(20, 0.05)
    ax.set_xlabel("instellation (S / S_earth)")
    ax.set_ylabel("stellar Teff (K)")
    ax.set_title("catalog planets: predicted P(habitable or inhabited)")
    fig.colorbar(sc, ax=ax, label="probability")
    ax.legend(fontsize=7, loc="lower left")
    return _fig_to_img(fig)


# The scores of every method's row, in the HTML and terminal tables: key -> column heading.
SCORE_COLUMNS = {"accuracy": "accuracy", "macro_f1": "macro-F1", "log_loss": "log-loss", "brier": "Brier",
                 "ece": "ECE"}


def _metric_table(rows: list[dict]) -> str:
    head = "<tr><th>method</th>" + "".join(f"<th>{label}</th>" for label in SCORE_COLUMNS.values()) + "".join(
        f"<th>recall {c}</th>" for c in CLASS_LABELS) + "</tr>"
    body = ""
    for r in rows:
        body += (f"<tr><td>{html.escape(r['name'])}</td>" + "".join(f"<td>{r[k]:.3f}</td>" for k in SCORE_COLUMNS)
                 + "".join(f"<td>{x:.3f}</td>" for x in r["recalls"]) + "</tr>")
    return f"<table>{head}{body}</table>"


def metric_rows(metrics: dict) -> list[dict]:
    """Model, baselines and ablations as uniform rows (also used for the terminal table)."""
    def row(name, m):
        return {"name": name, **{k: m[k] for k in SCORE_COLUMNS},
                "recalls": [m["per_class"][c]["recall"] for c in CLASS_NAMES]}

    rows = [row("model (temperature-scaled)", metrics["model"]["calibrated"])]
    rows += [row(f"baseline: {k}", v) for k, v in metrics.get("baselines", {}).items()]
    if "ceiling_estimate" in metrics:
        c = metrics["ceiling_estimate"]
        sizes = "/".join(str(p["n_train"]) for p in c["curve"])
        state = "flat" if c["flattened"] else "still rising"
        rows.append(row(f"ceiling estimate: observer plateau (LightGBM at n_train {sizes}, {state})", c["plateau"]))
    rows += [row(f"ablation: {k}", v) for k, v in metrics.get("ablations", {}).items()]
    return rows


def _example_spectra(store: Path, max_runs: int = 400) -> list[tuple[str, np.ndarray]]:
    """Per biosphere kind, the stored spectrum with the best signal: many transits, small star."""
    storage = RealDataStorage(store)
    ids = [r["run_id"] for r in storage.list_stored_runs() if r.get("has_spectrum")][:max_runs]
    picked: dict[str, tuple[float, object]] = {}
    for run_id in ids:
        t = storage.load_run(run_id)
        score = t.truth.n_transits * (t.truth.planet_radius_earth / t.truth.star_radius_rsun) ** 2
        if t.truth.biosphere not in picked or score > picked[t.truth.biosphere][0]:
            picked[t.truth.biosphere] = (score, t)
    return [(f"{r.truth.name}: biosphere={kind}, {r.truth.n_transits} transits, R*={r.truth.star_radius_rsun:.2f}",
             r.spectrum) for kind, (_, r) in sorted(picked.items())]


def write_report(run_dir: Path, store: Path | None = None) -> Path:
    """Write RUN/report.html and return its path."""
    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    store = Path(store or metrics.get("data", ""))
    parts = [f"<h1>astrobio run report: {html.escape(run_dir.name)}</h1>",
             f"<p>Evaluated on the <b>{metrics['split']}</b> split ({metrics['model']['calibrated']['n']} planets); "
             f"temperature T = {metrics['model']['temperature']:.2f}. Every number below was computed by "
             f"<code>astrobio evaluate</code> on this machine.</p>"]
    history = read_history(run_dir)
    if history:
        parts += ["<h2>Training</h2>", fig_training_curves(history)]
    m = metrics["model"]
    parts += ["<h2>Model vs baselines and ablations</h2>", _metric_table(metric_rows(metrics)),
              fig_comparison([(r["name"], r["accuracy"], r["macro_f1"]) for r in metric_rows(metrics)],
                             "accuracy and macro-F1 on the test split"),
              "<h2>Errors and calibration</h2>", fig_confusion(m["calibrated"]["confusion_matrix"]),
              fig_reliability(m["reliability_before"], m["reliability_after"]),
              f"<p>ECE before temperature scaling {m['raw']['ece']:.3f}, after {m['calibrated']['ece']:.3f}.</p>",
              "<h2>Observing depth</h2>", fig_by_transits(m["by_transits"])]
    if m.get("modality_weights_by_class"):
        parts += ["<h2>Which evidence the model used</h2>", fig_attribution(m["modality_weights_by_class"])]
    if RealDataStorage.exists(store):
        examples = _example_spectra(store)
        if examples:
            parts += ["<h2>Spectra</h2>", fig_spectra(examples)]
    pred_path = run_dir / "predictions.csv"
    if pred_path.exists():
        with open(pred_path, newline="") as fh:
            preds = list(csv.DictReader(fh))
        if preds:
            parts += ["<h2>Real catalog planets</h2>",
                      "<p>Inputs built by the world simulator from catalog values with the prior atmosphere "
                      "(1 bar N2, Earth CO2); catalog planets have no transmission spectrum here.</p>",
                      fig_hz_diagram(preds)]
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}img{max-width:100%}")
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>astrobio report</title><style>{style}</style>" \
           f"</head><body>{''.join(parts)}</body></html>"
    out = run_dir / "report.html"
    with atomic_write(out) as fh:
        fh.write(page)
    return out
