"""Classification, calibration and regression metrics, and stratified views of them.

ECE: Guo et al. (2017) top-label expected calibration error with equal-width confidence bins.
Temperature scaling: Guo et al. (2017), one scalar T fitted by minimising validation NLL.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ("not_habitable", "habitable", "inhabited")


def confusion_matrix(y_true, y_pred, n_classes: int = 3) -> np.ndarray:
    """Rows = true class, columns = predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def precision_recall_f1(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall and F1 (0 where undefined, as scikit-learn's zero_division=0)."""
    tp = np.diag(cm).astype(float)
    pred, true = cm.sum(0).astype(float), cm.sum(1).astype(float)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1}


def binary_auroc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney U with tie correction); NaN if one class is absent."""
    y = np.asarray(y, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(score)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def expected_calibration_error(probs: np.ndarray, y_true, n_bins: int = 15) -> float:
    """Top-label ECE: sum over bins of |accuracy - confidence| weighted by the bin's share."""
    probs = np.asarray(probs, float)
    conf, pred = probs.max(1), probs.argmax(1)
    correct = (pred == np.asarray(y_true)).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def reliability_curve(probs: np.ndarray, y_true, n_bins: int = 10) -> dict[str, list[float]]:
    """Per-bin mean confidence, accuracy and count (for the reliability diagram)."""
    probs = np.asarray(probs, float)
    conf, correct = probs.max(1), (probs.argmax(1) == np.asarray(y_true)).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    out = {"confidence": [], "accuracy": [], "count": []}
    for b in range(n_bins):
        m = idx == b
        out["confidence"].append(float(conf[m].mean()) if m.any() else float("nan"))
        out["accuracy"].append(float(correct[m].mean()) if m.any() else float("nan"))
        out["count"].append(int(m.sum()))
    return out


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, float) / temperature
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def fit_temperature(logits: np.ndarray, y_true) -> float:
    """Temperature T > 0 minimising the NLL of softmax(logits / T) (bounded 1-D search in log T)."""
    from scipy.optimize import minimize_scalar

    logits, y = np.asarray(logits, float), np.asarray(y_true, int)

    def nll(log_t: float) -> float:
        p = softmax(logits, float(np.exp(log_t)))
        return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def classification_metrics(y_true, probs: np.ndarray) -> dict:
    """Accuracy, macro-F1, per-class precision/recall, AUROCs, ECE, confusion matrix."""
    y = np.asarray(y_true, int)
    probs = np.asarray(probs, float)
    pred = probs.argmax(1)
    cm = confusion_matrix(y, pred, probs.shape[1])
    prf = precision_recall_f1(cm)
    present = cm.sum(1) > 0
    out = {
        "n": int(len(y)),
        "accuracy": float((pred == y).mean()) if len(y) else float("nan"),
        "macro_f1": float(prf["f1"][present].mean()) if present.any() else float("nan"),
        "per_class": {name: {"precision": float(prf["precision"][c]), "recall": float(prf["recall"][c]),
                             "f1": float(prf["f1"][c]), "support": int(cm[c].sum())}
                      for c, name in enumerate(CLASS_NAMES[:probs.shape[1]])},
        "auroc_ovr": {name: binary_auroc(y == c, probs[:, c]) for c, name in enumerate(CLASS_NAMES[:probs.shape[1]])},
        "auroc_habitable_vs_not": binary_auroc(y >= 1, probs[:, 1:].sum(1)),
        "ece": expected_calibration_error(probs, y),
        "confusion_matrix": cm.tolist(),
    }
    hab = y >= 1
    out["auroc_inhabited_vs_habitable"] = binary_auroc(
        y[hab] == 2, probs[hab, 2] / np.clip(probs[hab, 1:].sum(1), 1e-12, None)) if hab.any() else float("nan")
    return out


def regression_metrics(pred: np.ndarray, target: np.ndarray, names) -> dict[str, dict[str, float]]:
    """R² and RMSE per target column (in the targets' physical units)."""
    pred, target = np.asarray(pred, float), np.asarray(target, float)
    out = {}
    for j, name in enumerate(names):
        t, p = target[:, j], pred[:, j]
        ss_res, ss_tot = float(((t - p) ** 2).sum()), float(((t - t.mean()) ** 2).sum())
        out[name] = {"r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
                     "rmse": float(np.sqrt(((t - p) ** 2).mean()))}
    return out


def transit_stratum(n_transits: int) -> str:
    """Observing-depth strata used across reports."""
    if n_transits <= 0:
        return "no spectrum"
    if n_transits <= 5:
        return "1-5 transits"
    if n_transits <= 20:
        return "6-20 transits"
    return ">20 transits"


def stratified(y_true, probs, groups) -> dict[str, dict]:
    """Accuracy, macro-F1 and ECE within each group label (e.g. transit stratum, modality present)."""
    y, probs, groups = np.asarray(y_true, int), np.asarray(probs, float), np.asarray(groups)
    out = {}
    for g in sorted(set(groups.tolist())):
        m = groups == g
        cm = classification_metrics(y[m], probs[m])
        out[str(g)] = {"n": cm["n"], "accuracy": cm["accuracy"], "macro_f1": cm["macro_f1"], "ece": cm["ece"]}
    return out
