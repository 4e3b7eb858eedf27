"""Baselines on the same split as the model.

- Kopparapu HZ rule (conservative: runaway–maximum greenhouse; optimistic: recent Venus–early Mars),
  Kopparapu et al. (2014).
- ESI threshold (Schulze-Makuch et al. 2011): ESI >= 0.8 with T_s estimated as T_eq + 33 K
  (Earth's greenhouse warming), the usual catalog practice.
- Bioverse exo-Earth candidate rule (Bixel & Apai 2021, after Stark et al. 2019): conservative HZ
  and 0.8 S^0.25 <= R <= 1.4 R_earth.
- LightGBM on the observed tabular features + binned spectrum + TF-IDF text features (optionally + the
  spectrum's reading by the observer's retrieval).
- HELA-style random-forest retrieval (Márquez-Neila et al. 2018) of log10 CO2, CH4, O2, H2O from the
  binned spectrum (a regression baseline for the model's regression head).
- Oracle ceiling: LightGBM on the true planet parameters (not observable; an upper bound).

Rule baselines turn their yes/no into class probabilities with the training split's class
frequencies inside each rule cell (Laplace-smoothed), so every baseline is scored the same way.
"""

from __future__ import annotations

import numpy as np

from astrobio import metrics as M
from astrobio.errors import InputValidationError
from astrobio.evaluation.features import RunTable
from astrobio.world import habitable, planets, stars
from astrobio.world.types import REGRESSION_KEYS

N_CLASSES = 3
GREENHOUSE_OFFSET_K = 33.0  # Earth's greenhouse warming, used to turn T_eq into an ESI surface temperature
ESI_THRESHOLD = 0.8


def _radius_mass(t: RunTable) -> tuple[np.ndarray, np.ndarray]:
    r, m = t.column("planet_radius_earth").copy(), t.column("planet_mass_earth").copy()
    r = np.where(np.isfinite(r), r, planets.radius_from_mass(np.where(np.isfinite(m), m, 1.0)))
    m = np.where(np.isfinite(m), m, planets.mass_from_radius(r))
    return r, m


def _hz_position(t: RunTable, inner: str, outer: str) -> np.ndarray:
    """True where the observed semimajor axis lies between the two named Kopparapu limits."""
    teff, lum, a = t.column("star_teff_k"), t.column("star_luminosity_lsun"), t.column("semimajor_axis_au")
    lo, hi = stars.TEFF_RANGE_K
    ok = np.isfinite(teff) & (teff >= lo) & (teff <= hi) & np.isfinite(lum) & np.isfinite(a)
    inside = np.zeros(len(t), dtype=bool)
    if ok.any():
        hz = habitable.habitable_zone(teff[ok], lum[ok])
        inside[ok] = (a[ok] >= np.asarray(hz[inner])) & (a[ok] <= np.asarray(hz[outer]))
    return inside


class RuleBaseline:
    """A yes/no rule calibrated by the training class frequencies in each rule cell."""

    def __init__(self, name: str, rule):
        self.name, self.rule = name, rule
        self.table_: np.ndarray | None = None

    def fit(self, train: RunTable) -> "RuleBaseline":
        cell = self.rule(train).astype(int)
        counts = np.ones((2, N_CLASSES))  # Laplace smoothing
        np.add.at(counts, (cell, train.y), 1)
        self.table_ = counts / counts.sum(1, keepdims=True)
        return self

    def predict_proba(self, t: RunTable) -> np.ndarray:
        return self.table_[self.rule(t).astype(int)]


def conservative_hz(t: RunTable) -> np.ndarray:
    return _hz_position(t, "runaway_greenhouse", "maximum_greenhouse")


def optimistic_hz(t: RunTable) -> np.ndarray:
    return _hz_position(t, "recent_venus", "early_mars")


def esi_rule(t: RunTable) -> np.ndarray:
    r, m = _radius_mass(t)
    ts = t.column("equilibrium_temperature_k") + GREENHOUSE_OFFSET_K
    ts = np.where(np.isfinite(ts), ts, 0.0)
    esi = habitable.earth_similarity_index(r, planets.density_earth(m, r), planets.escape_velocity_earth(m, r),
                                           np.clip(ts, 1.0, None))
    return np.asarray(esi) >= ESI_THRESHOLD


def bioverse_eec(t: RunTable) -> np.ndarray:
    r, _ = _radius_mass(t)
    s = t.column("instellation_searth")
    return conservative_hz(t) & (r >= 0.8 * np.power(np.clip(s, 0, None), 0.25)) & (r <= 1.4)


class LightGBMBaseline:
    """Gradient-boosted trees on observed values + binned spectrum + TF-IDF of the observing log; with
    `with_reading`, also the observer's spectrum reading (`RunTable.reading`: the retrieval's detection
    significances and abundances, which the deep model's fusion tokenizes), so the comparison with the deep model
    can be made on exactly its numbers."""

    name = "lightgbm_tabular_spectrum_text"

    def __init__(self, seed: int = 0, n_text_features: int = 64, with_reading: bool = False):
        self.seed, self.n_text, self.with_reading = seed, n_text_features, with_reading
        if with_reading:
            self.name = LightGBMBaseline.name + "_reading"

    def _x(self, t: RunTable) -> np.ndarray:
        text = self.vectorizer_.transform(t.texts).toarray()
        parts = [t.observed, t.spectrum_bins, text] + ([t.reading] if self.with_reading else [])
        return np.hstack(parts).astype(np.float32)

    def fit(self, train: RunTable, soft_targets: np.ndarray | None = None) -> "LightGBMBaseline":
        """Fit on `train.y`; with `soft_targets` [N, C] (rows summing to 1), on those instead: each run enters
        once per class it has weight on, with that weight, so the multi-class log-loss boosted is the
        cross-entropy to the soft targets."""
        from lightgbm import LGBMClassifier
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer_ = TfidfVectorizer(max_features=self.n_text, ngram_range=(1, 2), sublinear_tf=True)
        self.vectorizer_.fit(train.texts)
        self.model_ = LGBMClassifier(n_estimators=300, learning_rate=0.05, num_leaves=15, min_child_samples=10,
                                     subsample=0.9, subsample_freq=1, colsample_bytree=0.8,
                                     random_state=self.seed, n_jobs=2, verbose=-1)
        x, y, weight = self._x(train), train.y, None
        if soft_targets is not None:
            q = np.asarray(soft_targets, dtype=np.float64)
            if q.shape != (len(train), N_CLASSES) or not np.allclose(q.sum(1), 1.0) or (q < 0).any():
                raise InputValidationError("soft_targets", q.shape, f"[{len(train)}, {N_CLASSES}] "
                                           "non-negative rows summing to 1")
            row, y = np.nonzero(q > 0)
            x, weight = x[row], q[row, y]
        self.model_.fit(x, y, sample_weight=weight)
        return self

    def predict_proba(self, t: RunTable) -> np.ndarray:
        return _full_proba(self.model_, self.model_.predict_proba(self._x(t)))


class OracleBaseline:
    """LightGBM on the true planet parameters: a ceiling no observer can reach."""

    name = "oracle_true_parameters"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, train: RunTable) -> "OracleBaseline":
        from lightgbm import LGBMClassifier

        self.model_ = LGBMClassifier(n_estimators=300, learning_rate=0.05, num_leaves=15, random_state=self.seed,
                                     n_jobs=2, verbose=-1)
        self.model_.fit(train.truth.astype(np.float32), train.y)
        return self

    def predict_proba(self, t: RunTable) -> np.ndarray:
        return _full_proba(self.model_, self.model_.predict_proba(t.truth.astype(np.float32)))


def _full_proba(model, p: np.ndarray) -> np.ndarray:
    """Expand predict_proba columns to all 3 classes (a class absent from training gets 0)."""
    out = np.zeros((len(p), N_CLASSES))
    out[:, np.asarray(model.classes_, int)] = p
    return out


HELA_TARGETS = ("log10_co2", "log10_ch4", "log10_o2", "log10_h2o")


class HelaRetrieval:
    """Random-forest retrieval of log10 mixing ratios from the binned spectrum (HELA-style)."""

    name = "hela_random_forest_retrieval"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, train: RunTable) -> "HelaRetrieval":
        from sklearn.ensemble import RandomForestRegressor

        self.cols_ = [REGRESSION_KEYS.index(k) for k in HELA_TARGETS]
        m = train.has_spectrum
        self.model_ = RandomForestRegressor(n_estimators=200, min_samples_leaf=2, random_state=self.seed, n_jobs=2)
        self.model_.fit(train.spectrum_bins[m], train.regression[m][:, self.cols_])
        return self

    def predict(self, t: RunTable) -> np.ndarray:
        """(N, 4) retrieved log10 mixing ratios; rows without a spectrum are NaN."""
        out = np.full((len(t), len(HELA_TARGETS)), np.nan)
        m = t.has_spectrum
        if m.any():
            out[m] = self.model_.predict(t.spectrum_bins[m])
        return out


def classification_baselines(seed: int = 0) -> list:
    """Every classification baseline, unfitted."""
    return [RuleBaseline("kopparapu_hz_conservative", conservative_hz),
            RuleBaseline("kopparapu_hz_optimistic", optimistic_hz),
            RuleBaseline("esi_threshold_0.8", esi_rule),
            RuleBaseline("bioverse_exo_earth_candidate", bioverse_eec),
            LightGBMBaseline(seed), LightGBMBaseline(seed, with_reading=True), OracleBaseline(seed)]


CEILING_FRACTIONS = (0.25, 0.5)  # smaller nested train subsets; the full split is the LightGBM baseline itself


def observer_ceiling(train: RunTable, test: RunTable, full_train_metrics: dict, seed: int = 0) -> dict:
    """The ceiling estimate of issue "World v2" on one store: LightGBM on the observed inputs, trained on nested
    subsets of the train split (25%, 50%, all). Where the curve has flattened, its best point estimates what an
    observer can reach from these inputs; `benchmarks/information.py` follows the curve to larger stores."""
    order = np.random.default_rng(seed).permutation(len(train))
    curve = []
    for f in CEILING_FRACTIONS:
        idx = np.sort(order[:max(int(round(f * len(train))), 30)])
        model = LightGBMBaseline(seed).fit(train.subset(idx))
        curve.append({"n_train": len(idx), **M.classification_metrics(test.y, model.predict_proba(test))})
    curve.append({"n_train": len(train), **full_train_metrics})
    best = max(curve, key=lambda m: m["macro_f1"])
    gain = curve[-1]["macro_f1"] - curve[-2]["macro_f1"]
    return {"curve": [{k: m[k] for k in ("n_train", "accuracy", "macro_f1", "log_loss")} for m in curve],
            "plateau": best, "last_doubling_macro_f1_gain": gain, "flattened": bool(gain < 0.02)}
