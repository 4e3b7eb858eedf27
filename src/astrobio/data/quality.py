"""Data quality of a store: completeness, per-run physical checks, duplicates, outliers, quarantine.

A run fails when any check below fails; failing runs are quarantined in the index with their reasons
(never deleted; `RealDataStorage.restore` lifts it, and a restored run that still fails is
quarantined again by the next assessment). Reasons are `check:detail` strings.

Checks per run:
- `non_finite:<array>`: NaN/Inf in a datacube, the spectrum, graph node features, the physics features or a
  coordinate.
- `temperature_range:<cube>`: air temperature outside [temperature_min_k, temperature_max_k].
- `humidity_negative:<cube>`, `humidity_supersaturated:<cube>`: specific humidity below 0, or above
  `max_supersaturation` × saturation. Saturation: Clausius–Clapeyron with constant latent heat,
  e_s = p_tr exp[(L_v / R_v)(1/T_tr − 1/T)] (Wallace & Hobbs 2006, eq. 3.92, IAPWS triple point), and
  q_s = ε e_s / (p − (1 − ε) e_s) at the level pressure p = σ p_s. p_s is the observer's prior 1 bar for
  the prior cube (SPEC.md §3) and the true surface pressure label for the true cube. Cells at or above
  water's critical temperature have no saturation limit and are skipped. The default tolerance 1.10
  absorbs the difference between saturation formulas (e.g. Bolton 1980 vs constant-L_v CC: < 5 % at
  230–310 K), not real supersaturation.
- `spectrum_depth_negative`: a depth more than `depth_negative_nsigma` sigmas below zero. A transit
  depth is positive, but a measured one scatters with the noise: a small planet's noisy depth (Mars
  around the Sun: ~25 ppm against a 15 ppm floor) can legitimately read below zero, 5 sigma cannot.
- `spectrum_sigma_nonpositive`, `spectrum_wavelength_not_increasing`.
- `graph_index_out_of_range`: an edge index < 0 or ≥ the number of nodes.
- `text_empty`.
- `label_*`: class not in {0, 1, 2}, liquid-water fraction outside [0, 1] or non-finite, habitable or
  inhabited class with no liquid water (SPEC.md "Labels").
- `duplicate_of:<run_id>`: same content hash as an earlier run (the first by run_id is kept).
- `content_hash_mismatch`: the run's content hash recomputed from what is stored now differs from the
  one recorded when it was written (a flipped value, an overwritten spectrum, a changed label);
  `verify_hashes=True` by default (cost: docs/reliability.md). `record_hash_mismatch`: the same for
  the run's JSON records (truth, observed values, extras, annotation).
- `unreadable:<error>`: reading the run raised (h5py, JSON, decoding: any exception); the run is
  quarantined with the error and the assessment carries on.
- `outlier:<summary>`: only when the robust z-score exceeds `outlier_quarantine_z`; above
  `outlier_warn_z` it is a warning. Modified z = 0.6745 (x − median) / MAD (Iglewicz & Hoaglin 1993).

Completeness of a modality = present / expected; a spectrum is expected only when the observed
planet has transits (n_transits > 0), the other modalities always. A stored graph counts as present
even with no nodes: "no metabolism is feasible" is a result, not missing data (the index flag
`has_graph`, and `presence` in the report, count non-empty graphs). Accuracy = fraction of runs that
pass every check.

The store itself is scanned too (data/repair.py): shards or runs the index misses, indexed runs whose
data is gone, unreadable files and stale temp files are listed in `storage_problems` (nothing is removed;
`astrobio data repair` fixes them), and a store with any of them does not pass.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from astrobio.constants import EPSILON_WATER, L_VAP_WATER, P_TRIPLE_WATER, R_VAPOUR, T_CRIT_WATER, T_TRIPLE_WATER
from astrobio.data.repair import scan_store
from astrobio.data.storage import MODALITIES, RealDataStorage, content_hash, hashed_arrays
from astrobio.errors import InputValidationError, QualityError
from astrobio.world.atmosphere import PRIOR_SURFACE_PRESSURE_BAR  # the observer's prior atmosphere (SPEC.md §3)
from astrobio.world.types import CLASS_NAMES, LABEL_KEYS

MIN_RUNS_FOR_OUTLIERS = 5  # a median/MAD over fewer runs says nothing

DEFAULT_THRESHOLDS: dict[str, float] = {
    "completeness": 0.95,  # seed report: 95 % completeness
    "accuracy": 0.98,  # seed report: 98 % accuracy (fraction of runs passing all checks)
    "temperature_min_k": 30.0,  # colder than any planetary atmosphere we simulate
    "temperature_max_k": 3000.0,  # hotter than the hottest rocky-planet daysides
    "max_supersaturation": 1.10,  # q / q_sat allowed (saturation-formula differences)
    "depth_negative_nsigma": 5.0,  # a depth this many sigmas below zero is not noise
    "outlier_warn_z": 3.5,  # Iglewicz & Hoaglin (1993) recommended cut
    "outlier_quarantine_z": 50.0,  # far beyond any real population spread (e.g. 2000 K vs 300 K is ~25)
}


def saturation_specific_humidity(temperature_k: np.ndarray, pressure_pa: np.ndarray) -> np.ndarray:
    """q_s [kg/kg] from constant-L_v Clausius–Clapeyron (Wallace & Hobbs 2006); capped at 1."""
    t = np.asarray(temperature_k, dtype=np.float64)
    e_s = P_TRIPLE_WATER * np.exp(L_VAP_WATER / R_VAPOUR * (1.0 / T_TRIPLE_WATER - 1.0 / t))
    denom = np.asarray(pressure_pa, dtype=np.float64) - (1.0 - EPSILON_WATER) * e_s
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(denom > EPSILON_WATER * e_s, EPSILON_WATER * e_s / denom, 1.0)
    return np.minimum(q, 1.0)


def robust_z(values: np.ndarray, min_scale: float = 0.0) -> np.ndarray:
    """Modified z-scores (x − median) / (MAD / 0.6745) (Iglewicz & Hoaglin 1993).

    When MAD = 0 the scale is 1.253314 × mean absolute deviation (their fallback); `min_scale` floors
    the scale so that a near-identical population does not turn physically small differences into
    huge z-scores.
    """
    x = np.asarray(values, dtype=np.float64)
    med = np.median(x)
    mad = np.median(np.abs(x - med))
    scale = mad / 0.6745 if mad > 0 else 1.253314 * np.mean(np.abs(x - med))
    scale = max(scale, min_scale)
    return (x - med) / scale if scale > 0 else np.zeros_like(x)


def check_run(a: Mapping[str, Any], thresholds: Mapping[str, float]) -> list[str]:
    """Failure reasons of one run given its `RealDataStorage.load_arrays` dict (empty = passes)."""
    reasons: list[str] = []
    arrays = {"datacube_prior": a["datacube_prior"], "datacube_true": a["datacube_true"],
              "spectrum": a["spectrum"], "graph_x": a["graph_x"], "physics_features": a.get("physics_features"),
              **{f"coords.{k}": v for k, v in a["coords"].items()}}
    for name, arr in arrays.items():
        if arr is not None and np.asarray(arr).dtype.kind == "f" and not np.isfinite(arr).all():
            reasons.append(f"non_finite:{name}")
    labels = a["labels"]
    p_true = float(labels.get("surface_pressure_bar", float("nan")))
    for key, p_s_bar in (("datacube_prior", PRIOR_SURFACE_PRESSURE_BAR), ("datacube_true", p_true)):
        reasons += _check_cube(key, a[key], np.asarray(a["coords"]["sigma"], np.float64), p_s_bar, thresholds)
    if a["spectrum"] is not None:
        reasons += _check_spectrum(a["spectrum"], thresholds["depth_negative_nsigma"])
    if a["graph_edge_index"] is not None:
        ei, n = a["graph_edge_index"], a["graph_x"].shape[0]
        if ei.size and (ei.min() < 0 or ei.max() >= n):
            reasons.append(f"graph_index_out_of_range:[{ei.min()}, {ei.max()}] with {n} nodes")
    if not (a["text"] or "").strip():
        reasons.append("text_empty")
    return reasons + _check_labels(labels)


def _check_cube(key: str, cube: np.ndarray, sigma: np.ndarray, p_s_bar: float,
                thresholds: Mapping[str, float]) -> list[str]:
    reasons = []
    t, q = cube[0].astype(np.float64), cube[1].astype(np.float64)  # (12, lat, lon, lev) each
    finite = np.isfinite(t) & np.isfinite(q)
    if not finite.any():
        return reasons  # already reported as non_finite
    lo, hi = thresholds["temperature_min_k"], thresholds["temperature_max_k"]
    tf = t[np.isfinite(t)]
    if tf.min() < lo or tf.max() > hi:
        reasons.append(f"temperature_range:{key} [{tf.min():.1f}, {tf.max():.1f}] K outside [{lo}, {hi}] K")
    if np.nanmin(q) < 0:
        reasons.append(f"humidity_negative:{key} min {np.nanmin(q):.3g}")
    if not (p_s_bar > 0 and math.isfinite(p_s_bar)):
        reasons.append(f"label_surface_pressure:{p_s_bar!r} bar, cannot check saturation of {key}")
        return reasons
    p = sigma * p_s_bar * 1e5  # (lev,) Pa
    check = finite & (t < T_CRIT_WATER) & (t > 0)
    ratio = q[check] / saturation_specific_humidity(t, p)[check]
    if ratio.size and ratio.max() > thresholds["max_supersaturation"]:
        reasons.append(f"humidity_supersaturated:{key} q/q_sat up to {ratio.max():.3g}")
    return reasons


def _check_spectrum(spec: np.ndarray, nsigma: float) -> list[str]:
    reasons = []
    wl, depth, sig = spec[:, 0], spec[:, 1], spec[:, 2]
    if not (np.diff(wl) > 0).all():
        reasons.append("spectrum_wavelength_not_increasing")
    with np.errstate(invalid="ignore"):
        low = depth + nsigma * np.abs(sig) < 0  # NaN compares False: reported as non_finite
    if low.any():
        i = int(np.argmax(low))
        reasons.append(f"spectrum_depth_negative:{depth[i]:.4g} ppm at {wl[i]:.4g} um (sigma {sig[i]:.3g} ppm)")
    if (sig[np.isfinite(sig)] <= 0).any():
        reasons.append(f"spectrum_sigma_nonpositive:min {np.nanmin(sig):.4g} ppm")
    return reasons


def _check_labels(labels: Mapping[str, Any]) -> list[str]:
    missing = [k for k in LABEL_KEYS if k not in labels]
    if missing:
        return [f"label_missing:{','.join(missing)}"]
    reasons = []
    cls, liquid = labels["habitability_class"], float(labels["liquid_water_fraction"])
    if cls not in range(len(CLASS_NAMES)) or isinstance(cls, bool):
        reasons.append(f"label_class_invalid:{cls!r}")
    if not (0.0 <= liquid <= 1.0):
        reasons.append(f"label_liquid_fraction_range:{liquid!r}")
    elif cls in (1, 2) and liquid <= 0.0:
        reasons.append(f"label_inconsistent:class {cls} with liquid_water_fraction {liquid}")
    return reasons


# Summaries compared across the store, with the smallest spread that counts as a real difference.
OUTLIER_MIN_SCALE = {"mean_air_temperature_true_k": 10.0, "log10_mean_specific_humidity_true": 0.3,
                     "log10_mean_transit_depth_ppm": 0.1}


def _summaries(a: Mapping[str, Any]) -> dict[str, float]:
    """Scalar summaries of a run for the outlier check (NaN when not applicable)."""
    t, q = a["datacube_true"][0], a["datacube_true"][1]
    spec = a["spectrum"]
    with np.errstate(all="ignore"):
        mean_q = float(np.nanmean(q)) if np.isfinite(q).any() else float("nan")
        depth = float(np.nanmean(spec[:, 1])) if spec is not None and np.isfinite(spec[:, 1]).any() else float("nan")
        return {
            "mean_air_temperature_true_k": float(np.nanmean(t)) if np.isfinite(t).any() else float("nan"),
            "log10_mean_specific_humidity_true": math.log10(mean_q) if mean_q > 0 else float("nan"),
            "log10_mean_transit_depth_ppm": math.log10(depth) if depth > 0 else float("nan"),
        }


@dataclass
class RunQuality:
    run_id: str
    passed: bool
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class QualityReport:
    """Result of `assess_data_quality`. `passed` = completeness and accuracy meet the thresholds."""

    n_runs: int
    completeness: dict[str, float]  # modality → present / expected
    presence: dict[str, float]  # modality → present / all runs
    accuracy: float
    thresholds: dict[str, float]
    runs: list[RunQuality]
    quarantined: list[str]  # run_ids quarantined by this assessment
    storage_problems: list[str] = field(default_factory=list)  # from the store scan; fixed by `data repair`
    hashes_verified: int = 0  # runs whose content hash was recomputed and compared

    @property
    def overall_completeness(self) -> float:
        return min(self.completeness.values()) if self.completeness else 0.0

    @property
    def passed(self) -> bool:
        return (self.overall_completeness >= self.thresholds["completeness"]
                and self.accuracy >= self.thresholds["accuracy"] and not self.storage_problems)

    @property
    def failed_runs(self) -> list[RunQuality]:
        return [r for r in self.runs if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "overall_completeness": self.overall_completeness, "passed": self.passed}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    def render(self, max_warned_rows: int = 8):
        """rich Table: the metrics against their thresholds, every quarantined run, and the first
        `max_warned_rows` warned runs (the rest counted; `to_json()` lists them all)."""
        from rich.table import Table

        table = Table(title=f"Data quality: {self.n_runs} runs — {'PASS' if self.passed else 'FAIL'}")
        table.add_column("check")
        table.add_column("value", justify="right")
        table.add_column("threshold", justify="right")
        table.add_column("status")
        ok = lambda good: "[green]ok[/]" if good else "[red]fail[/]"  # noqa: E731
        for m in MODALITIES:
            c = self.completeness[m]
            table.add_row(f"completeness {m}", f"{c:.3f} (present {self.presence[m]:.3f})",
                          f"≥ {self.thresholds['completeness']}", ok(c >= self.thresholds["completeness"]))
        table.add_row("accuracy (runs passing)", f"{self.accuracy:.3f}", f"≥ {self.thresholds['accuracy']}",
                      ok(self.accuracy >= self.thresholds["accuracy"]))
        table.add_row("content hashes verified", str(self.hashes_verified), "", "")
        for problem in self.storage_problems:
            table.add_row("store", problem, "", "[red]run `astrobio data repair`[/]")
        warned = [r for r in self.runs if r.warnings and not r.reasons]
        for r in [r for r in self.runs if r.reasons] + warned[:max_warned_rows]:
            table.add_row(r.run_id, "; ".join(r.reasons + [f"warning {w}" for w in r.warnings]), "",
                          "[red]quarantine[/]" if r.reasons else "[yellow]warning[/]")
        if len(warned) > max_warned_rows:
            table.add_row(f"... {len(warned) - max_warned_rows} more warned runs", "(kept; see --json)", "",
                          "[yellow]warning[/]")
        return table

    def render_text(self, width: int = 120) -> str:
        from rich.console import Console

        console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
        console.print(self.render())
        return console.export_text()


class AdvancedDataQualityManager:
    """Assesses a RealDataStorage and quarantines the runs that fail (see the module docstring)."""

    def __init__(self, quality_thresholds: Mapping[str, float] | None = None):
        self.quality_thresholds = _merge_thresholds(DEFAULT_THRESHOLDS, quality_thresholds)

    def assess_data_quality(self, storage, quality_thresholds: Mapping[str, float] | None = None,
                            quarantine: bool = True, verify_hashes: bool = True) -> QualityReport:
        """Check every stored run (quarantined ones included) and quarantine the failing ones."""
        if isinstance(storage, (str, Path)):
            storage = RealDataStorage(storage)
        thresholds = _merge_thresholds(self.quality_thresholds, quality_thresholds)
        rows = storage.list_stored_runs(include_quarantined=True)
        problems = scan_store(storage).problems()
        if not rows:
            raise QualityError(f"the store at {storage.path} holds no runs in its index to assess"
                               + (f" ({'; '.join(problems)}): run `astrobio data repair {storage.path}`"
                                  if problems else ""))
        results: dict[str, RunQuality] = {}
        summaries: dict[str, dict[str, float]] = {}
        expected = {m: 0 for m in MODALITIES}
        present = {m: 0 for m in MODALITIES}
        first_by_hash: dict[str, str] = {}
        verified = 0
        for row in rows:  # ordered by run_id
            run_id = row["run_id"]
            try:  # a corrupt shard can raise anything (h5py RuntimeError/OSError, JSON, Unicode): catch it all
                a = storage.load_arrays(run_id)
                reasons = check_run(a, thresholds)
                if verify_hashes:
                    reasons += _verify_hash(a, row["content_hash"])
                    if storage.record_hash_matches(run_id) is False:
                        reasons.append("record_hash_mismatch:truth, observed, extras or annotation changed")
                    verified += 1
                summary = _summaries(a)
            except Exception as exc:
                results[run_id] = RunQuality(run_id, False, [f"unreadable:{type(exc).__name__}: {exc}"])
                continue
            if row["content_hash"] in first_by_hash:
                reasons.append(f"duplicate_of:{first_by_hash[row['content_hash']]}")
            else:
                first_by_hash[row["content_hash"]] = run_id
            results[run_id] = RunQuality(run_id, not reasons, reasons)
            summaries[run_id] = summary
            n_transits = float(a["observed"].get("n_transits") or 0)
            stored = {"datacube": True, "graph": a["graph_x"] is not None, "spectrum": a["spectrum"] is not None,
                      "text": row["has_text"]}
            for m in MODALITIES:
                exp = m != "spectrum" or n_transits > 0 or stored["spectrum"]
                expected[m] += int(exp)
                present[m] += int(stored[m] and exp)
        self._flag_outliers(summaries, results, thresholds)
        newly = []
        if quarantine:
            for r in results.values():
                if not r.passed:
                    storage.quarantine(r.run_id, r.reasons)
                    newly.append(r.run_id)
        n = len(rows)
        return QualityReport(
            n_runs=n,
            completeness={m: present[m] / expected[m] if expected[m] else 1.0 for m in MODALITIES},
            presence={m: sum(bool(r[f"has_{m}"]) for r in rows) / n for m in MODALITIES},
            accuracy=sum(r.passed for r in results.values()) / n,
            thresholds=dict(thresholds), runs=list(results.values()), quarantined=newly,
            storage_problems=problems, hashes_verified=verified)

    @staticmethod
    def _flag_outliers(summaries: dict[str, dict[str, float]], results: dict[str, RunQuality],
                       thresholds: Mapping[str, float]) -> None:
        if len(summaries) < MIN_RUNS_FOR_OUTLIERS:
            return
        ids = list(summaries)
        for key in next(iter(summaries.values())):
            vals = np.array([summaries[i][key] for i in ids])
            ok = np.isfinite(vals)
            if ok.sum() < MIN_RUNS_FOR_OUTLIERS:
                continue
            z = np.full(len(ids), np.nan)
            z[ok] = robust_z(vals[ok], OUTLIER_MIN_SCALE[key])
            for run_id, zi, v in zip(ids, z, vals):
                if not np.isfinite(zi) or abs(zi) <= thresholds["outlier_warn_z"]:
                    continue
                msg = f"outlier:{key}={v:.4g} (robust z {zi:+.1f})"
                r = results[run_id]
                if abs(zi) > thresholds["outlier_quarantine_z"]:
                    r.reasons.append(msg)
                    r.passed = False
                else:
                    r.warnings.append(msg)


def _verify_hash(a: Mapping[str, Any], recorded: str) -> list[str]:
    """`content_hash_mismatch` when the stored content no longer hashes to what was recorded at write time."""
    now = content_hash(hashed_arrays(a), a["text"], a["labels"])
    return [] if now == recorded else [f"content_hash_mismatch:recorded {recorded[:12]}, stored data {now[:12]}"]


def _merge_thresholds(base: Mapping[str, float], override: Mapping[str, float] | None) -> dict[str, float]:
    merged = dict(base)
    for k, v in (override or {}).items():
        if k not in DEFAULT_THRESHOLDS:
            raise InputValidationError("quality_thresholds", k, f"one of {sorted(DEFAULT_THRESHOLDS)}")
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InputValidationError(f"quality_thresholds.{k}", v, "a finite number")
        merged[k] = float(v)
    for k in ("completeness", "accuracy"):
        if not 0.0 <= merged[k] <= 1.0:
            raise InputValidationError(f"quality_thresholds.{k}", merged[k], "a fraction in [0, 1]")
    if merged["temperature_min_k"] >= merged["temperature_max_k"]:
        raise InputValidationError("quality_thresholds.temperature_min_k", merged["temperature_min_k"],
                                   f"< temperature_max_k={merged['temperature_max_k']}")
    return merged


__all__ = ["AdvancedDataQualityManager", "QualityReport", "RunQuality", "DEFAULT_THRESHOLDS",
           "saturation_specific_humidity", "robust_z", "check_run"]
