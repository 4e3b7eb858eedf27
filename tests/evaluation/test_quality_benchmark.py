"""benchmarks/quality.py on a tiny store: the split, every method's rows, resuming, the figure."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from astrobio.io import canonical_json, source_sha256

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "quality.py"


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("quality_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_subsets_are_nested_system_disjoint_and_carve_a_validation_slice(quality):
    systems = {f"r{i:02d}": f"s{i // 2}" for i in range(40)}  # 20 systems of 2 planets
    pool = sorted(systems)[:30]
    fit, val = quality.subset_ids(pool, systems, 20, seed=3, max_val=4)
    assert len(fit) + len(val) == 20 and len(val) == 2  # 10% of 20
    assert not {systems[r] for r in fit} & {systems[r] for r in val}
    small_fit, small_val = quality.subset_ids(pool, systems, 10, seed=3, max_val=4)
    assert set(small_fit + small_val) <= set(fit + val)  # one seed's subsets are nested
    other = quality.subset_ids(pool, systems, 20, seed=4, max_val=4)
    assert set(other[0] + other[1]) != set(fit + val)  # the seed draws the subset
    with pytest.raises(SystemExit):
        quality.subset_ids(pool, systems, 31, seed=0, max_val=4)


def test_scores_say_which_question_a_method_loses_overall_and_per_stratum(quality):
    import numpy as np

    y = np.array([0, 1, 2, 2])
    # right about habitability everywhere; calls both inhabited planets habitable
    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.6, 0.3], [0.1, 0.6, 0.3], [0.1, 0.5, 0.4]])
    s = quality.scores(y, probs, np.array([0, 0, 10, 10]))
    assert s["macro_f1"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert s["f1_per_class"] == pytest.approx({"not_habitable": 1.0, "habitable": 0.5, "inhabited": 0.0})
    assert s["macro_f1_habitable_revealed"] == pytest.approx(s["macro_f1"])  # habitability was not the loss
    assert s["macro_f1_inhabited_revealed"] == 1.0  # the inhabited question was all of it
    # that stratum holds class 2 only; the absent classes count 0 in its macro average (metrics' convention)
    assert s["strata"]["6-20 transits"]["macro_f1_inhabited_revealed"] == pytest.approx(1 / 3)
    assert s["strata"]["6-20 transits"]["macro_f1"] == 0.0
    assert set(quality.SCORES) - {"macro_f1_decision"} <= set(s)  # the decision needs a validation slice


def test_test_set_reaches_its_size_and_holds_whole_systems(quality):
    systems = {f"r{i:03d}": f"s{i // 3}" for i in range(300)}
    fractions = quality.split_fractions(systems, 40)
    test = quality.test_by_hash(systems, fractions)
    assert len(test) >= 40
    assert all((r in test) == (o in test) for r in systems for o in systems if systems[r] == systems[o])


def test_every_method_scored_resumed_and_plotted(quality, eval_store, tmp_path, monkeypatch):
    store = tmp_path / "store"
    shutil.copytree(eval_store, store)  # the benchmark writes the pool's stats and tokenizer beside the store
    out = tmp_path / "quality.json"
    common = ["quality.py", "--store", str(store), "--seeds", "0", "--n-test", "8", "--test-from-systems", "14",
              "--work", str(tmp_path / "work"), "--out", str(out)]
    first = common + ["--max-systems", "24", "--sizes", "10,16", "--preset", "tiny", "--budget-s", "1,1",
                      "--steps-per-cpu-s", "3", "--batch-size", "4", "--eval-every", "2", "--max-val", "3"]
    monkeypatch.setattr(sys, "argv", first)
    quality.main()
    result = json.loads(out.read_text())
    (leg,) = result["legs"]
    assert result["test_runs"] >= 8 and leg["pool_runs"] + result["test_runs"] == leg["store_runs"]
    # the leg names what ran: the package source's digest, the libraries, the data state in --work
    assert leg["environment"]["source_sha256"] == source_sha256() and leg["environment"]["lightgbm"]
    saved = json.loads((tmp_path / "work" / "data_state.json").read_text())["state"]
    assert leg["data_state_sha256"] == hashlib.sha256(canonical_json(saved).encode()).hexdigest()
    assert len(leg["store_content_sha256"]) == 64
    methods = {r["method"] for r in result["rows"]}
    assert {"deep", "lightgbm", "oracle", "kopparapu_hz_conservative", "esi_threshold_0.8"} <= methods
    assert {(r["n_train"], r["seed"]) for r in result["rows"]} == {(10, 0), (16, 0)}
    for r in result["rows"]:
        assert 0 <= r["accuracy"] <= 1 and r["log_loss"] > 0 and 0 <= r["brier"] <= 2 and r["temperature"] > 0
        assert sum(s["n"] for s in r["strata"].values()) == result["test_runs"]
    deep = [r for r in result["rows"] if r["method"] == "deep"]
    assert all(r["training"]["n_fit"] + r["training"]["n_val"] == r["n_train"] for r in deep)
    assert out.with_suffix(".png").stat().st_size > 10_000
    n_rows = len(result["rows"])
    quality.main()  # a second leg finds every row done
    assert len(json.loads(out.read_text())["rows"]) == n_rows
    # a leg on the whole store: a larger pool, the same test set (drawn from the first 14 systems)
    monkeypatch.setattr(sys, "argv", common + ["--methods", "rules", "--sizes", "24"])
    quality.main()
    grown = json.loads(out.read_text())
    assert grown["test_set_sha256"] == result["test_set_sha256"] and len(grown["legs"]) == 2
    assert grown["legs"][-1]["store_content_sha256"] != leg["store_content_sha256"]  # more runs in use
    assert grown["legs"][-1]["pool_runs"] > leg["pool_runs"]
    assert {r["n_train"] for r in grown["rows"]} == {10, 16, 24}


def test_a_step_budget_runs_exactly_its_steps_without_a_cpu_budget(quality, eval_store, tmp_path, monkeypatch):
    store = tmp_path / "store"
    shutil.copytree(eval_store, store)
    out = tmp_path / "quality.json"
    common = ["quality.py", "--store", str(store), "--seeds", "0", "--n-test", "8", "--work", str(tmp_path / "work"),
              "--out", str(out), "--methods", "deep", "--preset", "tiny", "--batch-size", "4", "--eval-every", "3",
              "--max-val", "3"]
    monkeypatch.setattr(sys, "argv", common + ["--sizes", "16", "--budget-steps", "6"])
    quality.main()
    result = json.loads(out.read_text())
    (row,) = result["rows"]
    t = row["training"]
    assert (t["steps"], t["planned_steps"], t["budget_steps"], t["budget_cpu_s"]) == (6, 6, 6, None)
    assert t["stop_reason"] == "max_steps"
    assert result["legs"][0]["deep_budget_steps"] == {"16": 6} and result["legs"][0]["deep_budget_cpu_s"] is None
    assert t["spectrum_head_weight"] == 0.0 and result["legs"][0]["deep_spectrum_head_weight"] == 0.0
    # the spectrum head's loss (hidden truth as a target) changes the training, and the row says it was used
    head_out = tmp_path / "head.json"
    monkeypatch.setattr(sys, "argv", [a if a != str(out) else str(head_out) for a in common]
                        + ["--sizes", "16", "--budget-steps", "6", "--spectrum-head-weight", "0.5"])
    quality.main()
    head = json.loads(head_out.read_text())
    assert head["rows"][0]["training"]["spectrum_head_weight"] == 0.5
    assert head["legs"][0]["deep_spectrum_head_weight"] == 0.5
    assert head["rows"][0]["log_loss"] != row["log_loss"]
    monkeypatch.setattr(sys, "argv", common + ["--sizes", "16,24", "--budget-steps", "6"])
    with pytest.raises(SystemExit, match="one value per size"):
        quality.main()


def test_one_hot_teacher_reproduces_the_labels_rows_and_each_row_says_it_was_distilled(quality, eval_store, tmp_path,
                                                                                       monkeypatch):
    import numpy as np

    from astrobio.data import RealDataStorage

    store = tmp_path / "store"
    shutil.copytree(eval_store, store)
    storage = RealDataStorage(store)
    ids = list(storage.index_columns(("run_id",))["run_id"])
    teacher = tmp_path / "teacher.npz"  # a teacher that knows only the label: the soft targets are the one-hots
    np.savez(teacher, run_ids=np.array(ids), probs=np.eye(3)[[storage.load_run(r).labels["habitability_class"]
                                                                for r in ids]])
    common = ["quality.py", "--store", str(store), "--seeds", "0", "--n-test", "8", "--methods", "deep,lightgbm",
              "--preset", "tiny", "--batch-size", "4", "--eval-every", "3", "--max-val", "3", "--sizes", "16",
              "--budget-steps", "4"]
    rows = {}
    for name, extra in (("labels", []), ("teacher", ["--teacher", str(teacher), "--teacher-weight", "1.0"])):
        out = tmp_path / f"{name}.json"
        monkeypatch.setattr(sys, "argv", common + ["--work", str(tmp_path / f"work-{name}"), "--out", str(out),
                                                   *extra])
        quality.main()
        result = json.loads(out.read_text())
        rows[name] = {r["method"]: r for r in result["rows"]}
        assert result["legs"][0]["teacher"] == ([str(teacher)] if extra else [])
    for method in ("deep", "lightgbm"):
        assert rows["teacher"][method]["log_loss"] == pytest.approx(rows["labels"][method]["log_loss"], abs=1e-4)
    assert rows["teacher"]["deep"]["training"]["teacher_weight"] == 1.0
    assert rows["teacher"]["lightgbm"]["soft_targets"] and not rows["labels"]["lightgbm"]["soft_targets"]


def test_legs_side_by_side_keep_each_others_rows(quality, tmp_path):
    header = {"store": "/s", "test_set_sha256": "abc", "git_revision": "r1", "test_runs": 1, "store_runs": 2}
    out, info = tmp_path / "q.json", tmp_path / "missing.json"
    row = {"accuracy": 0.5, "macro_f1": 0.4, "log_loss": 1.0, "brier": 0.6, "ece": 0.1, "auroc_habitable": 0.7,
           "auroc_inhabited": float("nan")}
    quality.save_rows(out, header, {"leg": 1}, [{"method": "deep", "n_train": 10, "seed": 0, **row}], info)
    # a second process that read the file before the first row landed still adds to it
    result = quality.save_rows(out, {**header, "git_revision": "r2"}, {"leg": 2},
                               [{"method": "deep", "n_train": 10, "seed": 1, **row, "macro_f1": 0.6}], info)
    assert [r["seed"] for r in result["rows"]] == [0, 1] and result["git_revisions"] == ["r1", "r2"]
    (summary,) = result["summary"]
    assert summary["macro_f1"] == {"median": 0.5, "min": 0.4, "max": 0.6} and summary["auroc_inhabited"] is None
    other = quality.save_rows(out, {**header, "test_set_sha256": "def"}, {"leg": 3}, [], info)
    assert other["rows"] == []  # another test set starts a new file


def test_members_score_the_mean_of_models_fitted_on_one_subset(quality, eval_store, tmp_path, monkeypatch):
    store = tmp_path / "store"
    shutil.copytree(eval_store, store)
    out, work = tmp_path / "quality.json", tmp_path / "work"
    common = ["quality.py", "--store", str(store), "--seeds", "0", "--n-test", "8", "--work", str(work),
              "--out", str(out), "--methods", "deep,lightgbm", "--preset", "tiny", "--batch-size", "4",
              "--eval-every", "3", "--max-val", "3", "--sizes", "16", "--budget-steps", "6"]
    monkeypatch.setattr(sys, "argv", common)
    quality.main()
    monkeypatch.setattr(sys, "argv", common + ["--members", "2"])
    quality.main()
    rows = {r["method"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"deep", "lightgbm", "deep_ensemble2", "lightgbm_ensemble2"}
    for method in ("deep", "lightgbm"):
        members = rows[f"{method}_ensemble2"]["members"]
        assert [m["seed"] for m in members] == [0, quality.MEMBER_SEED_STRIDE]
        # member 0 is the seed's own model, refitted: the same scores to the last digit
        assert members[0]["macro_f1"] == rows[method]["macro_f1"]
        assert members[0]["log_loss"] == rows[method]["log_loss"]
    assert rows["deep_ensemble2"]["training"]["n_fit"] == rows["deep"]["training"]["n_fit"]
    assert len(list((work / "members").glob("*.npz"))) == 4
    # members fitted side by side (--member k) are read back by the leg that writes the row, not refitted:
    # a changed member file shows through
    work2, out2 = tmp_path / "work2", tmp_path / "q2.json"
    alone = [a.replace(str(work), str(work2)).replace(str(out), str(out2)) for a in common]
    alone[alone.index("deep,lightgbm")] = "lightgbm"
    monkeypatch.setattr(sys, "argv", alone + ["--members", "2", "--member", "1"])
    quality.main()
    assert json.loads(out2.read_text())["rows"] == []
    (path,) = (work2 / "members").glob("*.npz")
    assert path.name == "lightgbm-n16-seed0-member1.npz"
    import numpy as np

    with np.load(path) as z:
        saved = dict(z)
    np.savez(path, **{**saved, "row": json.dumps({**json.loads(str(saved["row"])), "macro_f1": -1.0})})
    monkeypatch.setattr(sys, "argv", alone + ["--members", "2"])
    quality.main()
    (again,) = json.loads(out2.read_text())["rows"]
    assert again["members"][1]["macro_f1"] == -1.0 and again["macro_f1"] == rows["lightgbm_ensemble2"]["macro_f1"]
    for bad, message in ((["--members", "0"], "--members: 0"), (["--members", "2", "--member", "2"], "--member: 2")):
        monkeypatch.setattr(sys, "argv", common + bad)
        with pytest.raises(SystemExit, match=message):
            quality.main()


def test_teacher_targets_mix_the_label_with_the_posterior_and_refuse_a_missing_run(quality, tmp_path):
    import numpy as np
    import torch

    path = tmp_path / "teacher.npz"
    np.savez(path, run_ids=np.array(["a", "b"]), probs=np.array([[0.0, 0.25, 0.75], [1.0, 0.0, 0.0]]))
    targets = quality.teacher_targets([path], 0.5)
    q = targets(["a", "b"], torch.tensor([1, 0]))
    assert q.tolist() == [[0.0, 0.625, 0.375], [1.0, 0.0, 0.0]]
    assert quality.teacher_targets([path], 0.0)(["a"], torch.tensor([2])).tolist() == [[0.0, 0.0, 1.0]]
    with pytest.raises(SystemExit, match="no posterior for run c"):
        targets(["a", "c"], torch.tensor([1, 1]))
    with pytest.raises(SystemExit, match="--teacher-weight: 1.5"):
        quality.teacher_targets([path], 1.5)


def test_distilled_loss_is_the_soft_cross_entropy_and_keeps_the_other_terms(quality):
    import torch
    import torch.nn.functional as F
    from types import SimpleNamespace

    logits, labels = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 1.0]]), torch.tensor([0, 2])
    hard = F.cross_entropy(logits, labels)
    out = {"classification": hard, "regression": torch.tensor(0.3), "total": 2.0 * hard + 0.3}
    config = SimpleNamespace(classification_weight=2.0)
    same = quality.distilled(out, logits, F.one_hot(labels, 3).float(), config)  # one-hot: the loss unchanged
    assert same["total"].item() == pytest.approx(out["total"].item(), abs=1e-6)
    q = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    soft = quality.distilled(out, logits, q, config)
    expected = -(q * torch.log_softmax(logits, -1)).sum(-1).mean()
    assert soft["classification"].item() == pytest.approx(expected.item(), abs=1e-6)
    assert soft["total"].item() == pytest.approx(2.0 * expected.item() + 0.3, abs=1e-6)
    assert soft["regression"] is out["regression"] and out["classification"] is hard  # the input is not edited
