"""Summaries of a store and of one run, as plain dicts (what `astrobio data inspect` prints)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from astrobio.data.storage import RealDataStorage
from astrobio.world.types import CLASS_NAMES, MODALITIES


def open_store(directory: Path) -> RealDataStorage:
    """The store at `directory`; StorageError when there is none."""
    store = RealDataStorage(directory)
    store.read_meta()  # raises StorageError when there is no store here
    return store


def class_and_modality_counts(rows: list[dict[str, Any]]) -> tuple[dict[int, int], dict[str, int]]:
    """Runs per habitability class (every class, 0 where none) and per present modality, over index rows."""
    classes = Counter(int(r["habitability_class"]) for r in rows)
    return ({c: classes.get(c, 0) for c in range(len(CLASS_NAMES))},
            {m: sum(1 for r in rows if r.get(f"has_{m}", 1)) for m in MODALITIES})


def store_summary(store: RealDataStorage) -> dict[str, Any]:
    """Counts of a store: runs, quarantined, classes, modalities, sources, shards, resolution and grid."""
    rows = store.list_stored_runs(include_quarantined=True)
    ok = [r for r in rows if not r["quarantined"]]
    meta = store.read_meta()
    classes, modalities = class_and_modality_counts(ok)
    return {
        "path": str(store.path),
        "runs": len(rows),
        "usable": len(ok),
        "quarantined": len(rows) - len(ok),
        "class_counts": {str(c): k for c, k in classes.items()},
        "modalities_present": modalities,
        "sources": dict(Counter(r["source"] for r in rows)),
        "shards": len({r["shard"] for r in rows}),
        "resolution": meta.get("resolution"),
        "grid_shape": (meta.get("grid") or {}).get("shape"),
        "schema_version": meta.get("schema_version"),
    }


def run_summary(store: RealDataStorage, run_id: str) -> dict[str, Any]:
    """One run: its index row, array shapes, labels and annotation (units, CF names, provenance)."""
    row = store.index_row(run_id)
    a = store.load_arrays(run_id)
    shapes = {k: list(a[k].shape) for k in ("datacube_prior", "datacube_true", "spectrum", "graph_x",
                                           "graph_edge_index") if a[k] is not None}
    ann = store.load_annotation(run_id)
    return {"index": row, "shapes": shapes, "labels": a["labels"], "text": a["text"],
            "units": {**{f"{k}:{v['name']}": v["units"] for k in ("datacube_prior", "datacube_true")
                         for v in ann["arrays"][k]["variables"]},
                      **{f"coords:{k}": v["units"] for k, v in ann["coordinates"].items()}},
            "standard_names": {v["name"]: v["standard_name"] for v in ann["arrays"]["datacube_true"]["variables"]},
            "provenance": ann["provenance"], "domain_tags": ann["domain_tags"]}
