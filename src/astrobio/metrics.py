"""Classification, calibration and regression metrics, and stratified views of them: the one definition
the trainer (early stopping, best.pt), evaluation, baselines and the report all use.
Lives outside evaluation/ (like `astrobio.io` and `astrobio.seeding`) because the trainer, a layer below
evaluation, uses it too; it imports nothing from evaluation/ or serve/.

Counting metrics come from scikit-learn with `labels=[0, …, C-1]` fixed, so a class that is predicted
but absent from the truth (or absent from both) counts the same everywhere: its F1 is 0
(`zero_division=0`) and it stays in the macro average.
Log-loss: mean negative log-likelihood of the true class (probabilities clipped by scikit-learn).
Brier score: Brier (1950), mean over samples of sum over classes of (p_c - 1[y = c])², in [0, 2].
ECE: Guo et al. (2017) top-label expected calibration error with equal-width confidence bins.
Temperature scaling: Guo et al. (2017), one scalar T fitted by minimising validation NLL.
Macro-F1 decision: argmax of calibrated probabilities maximises accuracy, not macro-F1 (Lipton et al. 2014,
"Optimal thresholding of classifiers to maximize F1 measure": the F1-optimal threshold lies below 1/2); where two
classes are hard to tell apart, argmax gives one of them nearly all the shared cases. `fit_macro_f1_weights`
fits per-class weights w (w_0 = 1) on validation data so that argmax(w * p) maximises macro-F1 there.
Revealed answers: the label asks two questions (`world/labels.py`): is the planet habitable (class >= 1), and is a
habitable planet inhabited (class 2)? `reveal_answer` tells a model the true answer to one of them and renormalises
its probabilities over the classes that agree (Bayes' rule: each answer is a union of classes). The macro-F1 left
then says what the other question costs the model; it diagnoses where a score is lost and is not a bound.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from astrobio.world.types import CLASS_NAMES


def confusion_matrix(y_true, y_pred, n_classes: int = 3) -> np.ndarray:
    """Rows = true class, columns = predicted class."""
    return skm.confusion_matrix(np.asarray(y_true, int), np.asarray(y_pred, int), labels=list(range(n_classes)))


def pairs_from_confusion(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) with the counts of confusion matrix `cm` (e.g. one all-reduced over ranks)."""
    cm = np.rint(np.asarray(cm, float)).astype(np.int64)
    true, pred = np.indices(cm.shape)
    return np.repeat(true.ravel(), cm.ravel()), np.repeat(pred.ravel(), cm.ravel())


def accuracy_macro_f1(y_true, y_pred, n_classes: int = 3) -> dict[str, float]:
    """Accuracy and macro-F1 over all `n_classes` labels (NaN for an empty split)."""
    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    if len(y_true) == 0:
        return {"accuracy": float("nan"), "macro_f1": float("nan")}
    return {"accuracy": float(skm.accuracy_score(y_true, y_pred)),
            "macro_f1": float(skm.f1_score(y_true, y_pred, labels=list(range(n_classes)), average="macro",
                                           zero_division=0))}


def binary_auroc(y, score) -> float:
    """Area under the ROC curve (ties count one half); NaN if one class is absent."""
    y = np.asarray(y, bool)
    if y.all() or not y.any():
        return float("nan")
    return float(skm.roc_auc_score(y, np.asarray(score, float)))


def log_loss(probs: np.ndarray, y_true) -> float:
    """Mean negative log-likelihood of the true class."""
    probs = np.asarray(probs, float)
    return float(skm.log_loss(np.asarray(y_true, int), probs, labels=list(range(probs.shape[1]))))


def brier_score(probs: np.ndarray, y_true) -> float:
    """Multi-class Brier score (Brier 1950): mean of sum_c (p_c - 1[y = c])², 0 (perfect) to 2."""
    probs = np.asarray(probs, float)
    return float(skm.brier_score_loss(np.asarray(y_true, int), probs, labels=list(range(probs.shape[1]))))


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


MACRO_F1_WEIGHT_GRID = np.exp(np.linspace(-1.5, 1.5, 31))  # candidate w_c relative to class 0


def fit_macro_f1_weights(probs: np.ndarray, y_true) -> np.ndarray:
    """Class weights w (w_0 = 1; a grid over the others) maximising the macro-F1 of argmax(w * probs) on these
    (validation) probabilities; ties go to the weights nearest 1 (log-distance), so uninformative data keep
    argmax."""
    probs, y = np.asarray(probs, float), np.asarray(y_true, int)
    n_classes = probs.shape[1]
    grids = np.meshgrid(*[MACRO_F1_WEIGHT_GRID] * (n_classes - 1), indexing="ij")
    candidates = np.stack([np.ones(grids[0].size)] + [g.ravel() for g in grids], axis=1)  # (K, C)
    candidates = candidates[np.argsort(np.abs(np.log(candidates)).sum(1), kind="stable")]
    best, best_f1 = candidates[0], -1.0
    for w in candidates:
        f1 = accuracy_macro_f1(y, (probs * w).argmax(1), n_classes)["macro_f1"]
        if f1 > best_f1 + 1e-12:
            best, best_f1 = w, f1
    return best


# The label's two questions: the classes for which the answer is "yes" (CLASS_NAMES order).
QUESTIONS = {"habitable": (1, 2), "inhabited": (2,)}


def reveal_answer(probs: np.ndarray, y_true, question: str) -> np.ndarray:
    """probs (N, C) conditioned on the true answer to QUESTIONS[question]: zero for the classes that disagree with
    it, the rest renormalised; uniform over the agreeing classes where probs gives them all 0."""
    if question not in QUESTIONS:
        raise ValueError(f"question {question!r}: expected one of {sorted(QUESTIONS)}")
    probs, y = np.asarray(probs, float), np.asarray(y_true, int)
    yes = np.isin(np.arange(probs.shape[1]), QUESTIONS[question])  # (C,)
    agree = yes[None, :] == np.isin(y, QUESTIONS[question])[:, None]  # (N, C)
    kept = np.where(agree, probs, 0.0)
    total = kept.sum(1, keepdims=True)
    uniform = agree / agree.sum(1, keepdims=True)
    return np.where(total > 0, kept / np.where(total > 0, total, 1.0), uniform)


def revealed_macro_f1(y_true, probs: np.ndarray) -> dict[str, float]:
    """Macro-F1 of argmax after each question's answer is revealed (`reveal_answer`), keyed by question."""
    return {q: accuracy_macro_f1(y_true, reveal_answer(probs, y_true, q).argmax(1), np.shape(probs)[1])["macro_f1"]
            for q in QUESTIONS}


def classification_metrics(y_true, probs: np.ndarray) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1, AUROCs (one-vs-rest; habitable-or-inhabited vs
    not; inhabited vs habitable among the truly habitable), log-loss, Brier, ECE, confusion matrix."""
    y = np.asarray(y_true, int)
    probs = np.asarray(probs, float)
    n_classes = probs.shape[1]
    labels = list(range(n_classes))
    pred = probs.argmax(1)
    empty = len(y) == 0
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0) if not empty else [np.zeros(n_classes)] * 4
    out = {
        "n": int(len(y)),
        **accuracy_macro_f1(y, pred, n_classes),
        "per_class": {name: {"precision": float(precision[c]), "recall": float(recall[c]),
                             "f1": float(f1[c]), "support": int(support[c])}
                      for c, name in enumerate(CLASS_NAMES[:n_classes])},
        "auroc_ovr": {name: binary_auroc(y == c, probs[:, c]) for c, name in enumerate(CLASS_NAMES[:n_classes])},
        "auroc_habitable_vs_not": binary_auroc(y >= 1, probs[:, 1:].sum(1)),
        "log_loss": log_loss(probs, y) if not empty else float("nan"),
        "brier": brier_score(probs, y) if not empty else float("nan"),
        "ece": expected_calibration_error(probs, y) if not empty else float("nan"),
        "confusion_matrix": confusion_matrix(y, pred, n_classes).tolist(),
    }
    hab = y >= 1
    out["auroc_inhabited_vs_habitable"] = binary_auroc(
        y[hab] == 2, probs[hab, 2] / np.clip(probs[hab, 1:].sum(1), 1e-12, None)) if hab.any() else float("nan")
    return out


def regression_metrics(pred: np.ndarray, target: np.ndarray, names) -> dict[str, dict[str, float]]:
    """R² and RMSE per target column (in the targets' physical units); R² NaN for a constant target."""
    pred, target = np.asarray(pred, float), np.asarray(target, float)
    out = {}
    for j, name in enumerate(names):
        t, p = target[:, j], pred[:, j]
        constant = len(t) < 2 or float(np.ptp(t)) == 0.0
        out[name] = {"r2": float("nan") if constant else float(skm.r2_score(t, p)),
                     "rmse": float(skm.root_mean_squared_error(t, p)) if len(t) else float("nan")}
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
    """Accuracy, macro-F1, log-loss, Brier and ECE within each group label (e.g. transit stratum, modality present)."""
    y, probs, groups = np.asarray(y_true, int), np.asarray(probs, float), np.asarray(groups)
    out = {}
    for g in sorted(set(groups.tolist())):
        m = groups == g
        cm = classification_metrics(y[m], probs[m])
        out[str(g)] = {k: cm[k] for k in ("n", "accuracy", "macro_f1", "log_loss", "brier", "ece")}
    return out
