"""collate_multimodal_batch and MultiModalBatch on hand-made items (no store needed)."""

import dataclasses
import math

import pytest
import torch
from torch_geometric.data import Data

from astrobio.data.batch import MODALITIES, MultiModalBatch
from astrobio.data.dataset import collate_multimodal_batch
from astrobio.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from astrobio.errors import InputValidationError

CUBE = (2, 12, 2, 3, 2)  # (vars, time, lat, lon, lev)
F = 15


def _item(i: int, *, cube=True, graph=True, spectrum=True, text=True, nan_fields=()):
    g = torch.Generator().manual_seed(i)
    num = torch.arange(F, dtype=torch.float32) + i
    for k in nan_fields:
        num[k] = math.nan
    return {
        "run_id": f"run-{i}",
        "datacube": torch.randn(CUBE, generator=g) if cube else None,
        "datacube_target": torch.randn(CUBE, generator=g),
        "graph": Data(x=torch.full((i + 2, 64), float(i + 1)),
                      edge_index=torch.tensor([[0, 1], [1, 0]])) if graph else None,
        "spectrum": torch.full((1000, 3), float(i + 1)) if spectrum else None,
        "input_ids": torch.tensor([BOS_ID] + [10 + i] * (i + 1) + [EOS_ID]) if text else None,
        "numerical_data": num,
        "physics_features": torch.tensor([0.0, 0.5, 0.9, 0.0]),
        "spectrum_reading": torch.full((11,), float(i + 1)) if spectrum and i != 1 else None,  # 1: no retrieval
        "instellation_wm2": 1361.0 * (i + 1),
        "surface_pressure_bar": 1.0,
        "label": i % 3,
        "regression_targets": torch.full((7,), float(i)),
        "datacube_stats": {"mean": torch.tensor([250.0, 0.004]), "std": torch.tensor([30.0, 0.005])},
        "regression_stats": {"mean": torch.zeros(7), "std": torch.ones(7)},
        "sigma_levels": torch.tensor([1.0, 0.5]),
        "lat_deg": torch.tensor([-45.0, 45.0]),
    }


@pytest.fixture
def mixed_batch() -> MultiModalBatch:
    items = [_item(0), _item(1, graph=False, nan_fields=(3, 8)), _item(2, spectrum=False, text=False),
             _item(3, cube=False, graph=False, spectrum=False)]
    return collate_multimodal_batch(items)


def _tensors(b: MultiModalBatch):
    out = {}
    for f in dataclasses.fields(b):
        v = getattr(b, f.name)
        if isinstance(v, torch.Tensor):
            out[f.name] = v
        elif isinstance(v, dict):
            out.update({f"{f.name}.{k}": t for k, t in v.items()})
    out.update({"graph.x": b.graph.x, "graph.edge_index": b.graph.edge_index, "graph.batch": b.graph.batch})
    return out


def test_collate_masks_shapes_and_fill_values(mixed_batch):
    b = mixed_batch
    assert len(b) == 4 and b.run_ids == ["run-0", "run-1", "run-2", "run-3"]
    assert MODALITIES == ("datacube", "graph", "spectrum", "text")
    assert b.modality_mask.dtype == torch.bool
    assert b.modality_mask.tolist() == [[True, True, True, True], [True, False, True, True],
                                        [True, True, False, False], [False, False, False, True]]
    assert b.datacube.shape == (4, *CUBE) and b.datacube_target.shape == (4, *CUBE)
    assert torch.count_nonzero(b.datacube[3]) == 0
    assert b.spectrum.shape == (4, 1000, 3)
    assert torch.all(b.spectrum[2:] == 0) and torch.all(b.spectrum[1] == 2.0)
    assert b.labels.tolist() == [0, 1, 2, 0] and b.labels.dtype == torch.int64
    assert b.instellation_wm2.tolist() == [1361.0, 2722.0, 4083.0, 5444.0]
    assert b.regression_targets.shape == (4, 7) and b.physics_features.shape == (4, 4)
    assert b.sigma_levels.tolist() == [1.0, 0.5] and b.lat_deg.tolist() == [-45.0, 45.0]


def test_collate_numerical_nan_becomes_zero_with_mask_false(mixed_batch):
    b = mixed_batch
    assert b.numerical_data.shape == (4, F) and b.numerical_mask.dtype == torch.bool
    assert b.numerical_mask[1].tolist() == [k not in (3, 8) for k in range(F)]
    assert b.numerical_data[1, 3] == 0 and b.numerical_data[1, 8] == 0 and b.numerical_data[1, 4] == 5.0
    assert bool(b.numerical_mask[0].all())
    for name, t in _tensors(b).items():
        if t.is_floating_point():
            assert torch.isfinite(t).all(), name


def test_collate_graph_missing_is_one_zero_node(mixed_batch):
    g = mixed_batch.graph
    # nodes: item0 2 real, item1 1 placeholder, item2 4 real, item3 1 placeholder
    assert g.num_graphs == 4
    assert g.batch.tolist() == [0, 0, 1, 2, 2, 2, 2, 3]
    assert g.x.shape == (8, 64)
    assert torch.all(g.x[2] == 0) and torch.all(g.x[7] == 0) and torch.all(g.x[3:7] == 3.0)
    # edges of item 2 are offset by the 3 nodes before it; placeholders add no edges
    assert g.edge_index.tolist() == [[0, 1, 3, 4], [1, 0, 4, 3]]


def test_collate_text_padding_and_missing_text(mixed_batch):
    b = mixed_batch
    # lengths: item0 3, item1 4, item2 missing -> [bos], item3 6
    assert b.input_ids.shape == (4, 6) and b.attention_mask.dtype == torch.int64
    assert b.attention_mask.sum(1).tolist() == [3, 4, 1, 6]
    assert b.input_ids[0].tolist() == [BOS_ID, 10, EOS_ID, PAD_ID, PAD_ID, PAD_ID]
    assert b.input_ids[2].tolist() == [BOS_ID] + [PAD_ID] * 5
    assert torch.all(b.input_ids[b.attention_mask == 0] == PAD_ID)


def test_collate_caps_text_length_keeping_eos():
    b = collate_multimodal_batch([_item(6)], max_text_tokens=4)  # item 6 has 9 tokens
    assert b.input_ids.tolist() == [[BOS_ID, 16, 16, EOS_ID]]
    assert b.attention_mask.tolist() == [[1, 1, 1, 1]]


def test_collate_all_spectra_missing_gives_default_width():
    b = collate_multimodal_batch([_item(0, spectrum=False), _item(1, spectrum=False)])
    assert b.spectrum.shape == (2, 1000, 3) and not b.modality_mask[:, 2].any()


def test_collate_rejects_empty_and_all_missing_datacube():
    with pytest.raises(InputValidationError, match="items"):
        collate_multimodal_batch([])
    with pytest.raises(InputValidationError, match="datacube"):
        collate_multimodal_batch([_item(0, cube=False)])
    with pytest.raises(InputValidationError, match="max_text_tokens"):
        collate_multimodal_batch([_item(0)], max_text_tokens=1)


def test_to_moves_and_copies_every_tensor(mixed_batch):
    b = mixed_batch.to("cpu")
    assert isinstance(b, MultiModalBatch) and b.run_ids == mixed_batch.run_ids
    before, after = _tensors(mixed_batch), _tensors(b)
    assert before.keys() == after.keys()
    for k in before:
        assert after[k].device.type == "cpu" and torch.equal(before[k], after[k]), k
    b64 = mixed_batch.to(torch.device("cpu"), non_blocking=True)
    assert torch.equal(b64.graph.x, mixed_batch.graph.x)


def test_pin_memory(mixed_batch):
    pinned = mixed_batch.pin_memory()
    for k, t in _tensors(pinned).items():
        assert torch.equal(t, _tensors(mixed_batch)[k]), k
    if not torch.accelerator.is_available():
        pytest.skip("no accelerator: nothing to pin for; pin_memory() returns the batch unchanged")
    assert all(t.is_pinned() for t in _tensors(pinned).values())


def test_drop_modality_masks_and_zeroes(mixed_batch):
    b = mixed_batch
    for name in MODALITIES:
        d = b.drop_modality(name)
        j = MODALITIES.index(name)
        assert not d.modality_mask[:, j].any()
        others = [i for i in range(4) if i != j]
        assert torch.equal(d.modality_mask[:, others], b.modality_mask[:, others])
        assert torch.equal(d.datacube_target, b.datacube_target) and torch.equal(d.labels, b.labels)
    assert torch.count_nonzero(b.drop_modality("datacube").datacube) == 0
    assert torch.count_nonzero(b.drop_modality("spectrum").spectrum) == 0
    dropped = b.drop_modality("spectrum")  # the retrieval's reading goes with its spectrum
    assert torch.count_nonzero(dropped.spectrum_reading) == 0 and not dropped.spectrum_reading_mask.any()
    t = b.drop_modality("text")
    assert t.input_ids.shape == b.input_ids.shape and t.attention_mask.sum(1).tolist() == [1, 1, 1, 1]
    assert t.input_ids[:, 0].tolist() == [BOS_ID] * 4 and torch.all(t.input_ids[:, 1:] == PAD_ID)
    g = b.drop_modality("graph").graph
    assert g.num_graphs == 4 and g.x.shape == (4, 64) and torch.count_nonzero(g.x) == 0
    assert g.edge_index.shape == (2, 0) and g.batch.tolist() == [0, 1, 2, 3]
    # the original is untouched
    assert b.modality_mask[0].all() and torch.count_nonzero(b.datacube[0]) > 0


def test_subset_drops_several_and_validates(mixed_batch):
    d = mixed_batch.subset(["spectrum", "text"])
    assert d.modality_mask[:, [2, 3]].sum() == 0
    assert torch.equal(d.modality_mask[:, :2], mixed_batch.modality_mask[:, :2])
    assert d.subset([]).modality_mask.equal(d.modality_mask)
    with pytest.raises(InputValidationError, match="modality"):
        mixed_batch.drop_modality("audio")


def test_to_leaves_the_original_batch_untouched(mixed_batch):
    converted = mixed_batch._map(lambda t: t.double() if t.is_floating_point() else t)
    assert converted.graph.x.dtype == torch.float64 and converted.datacube_stats["mean"].dtype == torch.float64
    assert mixed_batch.graph.x.dtype == torch.float32 and mixed_batch.datacube.dtype == torch.float32


def test_spectrum_reading_known_only_with_a_spectrum_and_its_retrieval(mixed_batch):
    b = mixed_batch  # item 0: spectrum + reading; 1: spectrum, no retrieval; 2, 3: no spectrum
    assert b.spectrum_reading.shape == (4, 11) and b.spectrum_reading_mask.shape == (4, 11)
    assert b.spectrum_reading_mask.all(1).tolist() == [True, False, False, False]
    assert b.spectrum_reading[0].tolist() == [1.0] * 11 and torch.count_nonzero(b.spectrum_reading[1:]) == 0
