"""Tabular views of planet runs for the baselines: observed values, binned spectra, the spectrum's reading,
text features.

Baselines see exactly what the model sees (observed parameters, the noisy spectrum and the observer's
retrieval of it, the observing log) except the oracle, which sees the true planet parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from astrobio.data.storage import RealDataStorage
from astrobio.world.features import spectrum_reading
from astrobio.world.types import OBSERVED_NUMERIC_FIELDS, REGRESSION_KEYS, SPECTRUM_READING_FIELDS

SPECTRUM_BINS = 48  # coarse log-spaced bins (~PRISM-like resolution over 0.6-12 um)
TRUE_FEATURES = ("star_teff_k", "star_luminosity_lsun", "instellation_searth", "planet_radius_earth",
                 "planet_mass_earth", "surface_pressure_bar", "star_activity", "ocean_fraction",
                 "eccentricity", "atmosphere_retained")
TRUE_GASES = ("CO2", "CH4", "O2", "O3", "H2", "N2O")


@dataclass
class RunTable:
    """Columns of one split: one row per run."""

    run_ids: list[str]
    y: np.ndarray  # (N,) habitability class
    regression: np.ndarray  # (N, 7) physical units, REGRESSION_KEYS
    observed: np.ndarray  # (N, F) OBSERVED_NUMERIC_FIELDS, NaN = missing
    spectrum_bins: np.ndarray  # (N, SPECTRUM_BINS) (depth - median) / sigma, NaN when no spectrum
    reading: np.ndarray  # (N, R) the observer's spectrum reading (SPECTRUM_READING_FIELDS), NaN when no spectrum
    has_spectrum: np.ndarray  # (N,) bool
    texts: list[str]
    truth: np.ndarray  # (N, len(TRUE_FEATURES) + len(TRUE_GASES)) true parameters (oracle only)
    n_transits: np.ndarray  # (N,)
    modality_present: np.ndarray  # (N, 4) datacube, graph, spectrum, text

    def __len__(self) -> int:
        return len(self.run_ids)

    def column(self, name: str) -> np.ndarray:
        return self.observed[:, OBSERVED_NUMERIC_FIELDS.index(name)]

    def subset(self, index: np.ndarray) -> "RunTable":
        """The rows `index` (integer positions), every column alike."""
        index = np.asarray(index, dtype=int)
        cols = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(self, **{k: ([v[i] for i in index] if isinstance(v, list) else v[index])
                                for k, v in cols.items()})


def bin_spectrum(spectrum: np.ndarray | None, n_bins: int = SPECTRUM_BINS) -> np.ndarray:
    """Inverse-variance-weighted mean of (depth - median depth) / sigma in log-spaced wavelength bins."""
    if spectrum is None:
        return np.full(n_bins, np.nan, dtype=np.float32)
    wl, depth, sigma = (np.asarray(spectrum[:, j], np.float64) for j in range(3))
    edges = np.geomspace(wl.min(), wl.max(), n_bins + 1)
    idx = np.clip(np.digitize(wl, edges) - 1, 0, n_bins - 1)
    w = 1.0 / sigma**2
    num = np.bincount(idx, weights=w * (depth - np.median(depth)), minlength=n_bins)
    den = np.bincount(idx, weights=w, minlength=n_bins)
    mean = np.divide(num, den, out=np.zeros(n_bins), where=den > 0)
    err = np.divide(1.0, np.sqrt(den), out=np.ones(n_bins), where=den > 0)
    return (mean / err).astype(np.float32)  # signal-to-noise of each bin's excess depth


def _truth_row(truth) -> list[float]:
    row = [float(getattr(truth, k)) if k != "instellation_searth" else truth.instellation_searth
           for k in TRUE_FEATURES]
    row += [np.log10(max(truth.composition.get(g, 0.0), 1e-12)) for g in TRUE_GASES]
    return row


def table_from_runs(runs) -> RunTable:
    """Build a RunTable from PlanetRun objects."""
    return RunTable(
        run_ids=[r.run_id for r in runs],
        y=np.array([int(r.labels["habitability_class"]) for r in runs], dtype=np.int64),
        regression=np.array([[r.labels[k] for k in REGRESSION_KEYS] for r in runs], dtype=np.float64).reshape(-1, len(REGRESSION_KEYS)),
        observed=np.array([r.observed.numeric_vector() for r in runs], dtype=np.float64).reshape(-1, len(OBSERVED_NUMERIC_FIELDS)),
        spectrum_bins=np.array([bin_spectrum(r.spectrum) for r in runs]).reshape(-1, SPECTRUM_BINS),
        reading=np.array([spectrum_reading(r.extras) for r in runs]).reshape(-1, len(SPECTRUM_READING_FIELDS)),
        has_spectrum=np.array([r.spectrum is not None for r in runs], dtype=bool),
        texts=[r.text for r in runs],
        truth=np.array([_truth_row(r.truth) for r in runs], dtype=np.float64).reshape(len(runs), -1),
        n_transits=np.array([r.truth.n_transits for r in runs], dtype=np.int64),
        modality_present=np.array([[v for v in r.modality_present().values()] for r in runs], dtype=bool).reshape(-1, 4),
    )


def load_table(store_path, run_ids) -> RunTable:
    """Load the given runs from a store into a RunTable."""
    storage = RealDataStorage(store_path)
    return table_from_runs([storage.load_run(rid) for rid in run_ids])
