import dataclasses

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.transforms import AddRandomWalkPE
from torch_geometric.utils import to_undirected

from astrobio.errors import InputValidationError
from astrobio.models.graph import MAX_LOGSTD, GraphVAEConfig, MetabolicGraphVAE, graph_keys, random_walk_pe


def empty_graph():
    return Data(x=torch.zeros(0, 64), edge_index=torch.zeros(2, 0, dtype=torch.long))


def graphs(seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in (6, 9, 4):
        out.append(Data(x=torch.rand(n, 64, generator=g), edge_index=torch.randint(0, n, (2, 2 * n), generator=g)))
    return out


def model(**kw):
    torch.manual_seed(0)
    return MetabolicGraphVAE(dataclasses.replace(GraphVAEConfig.from_name("tiny"), **kw))


def test_random_walk_pe_of_a_4_cycle_exact():
    ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    pe = random_walk_pe(ei, torch.zeros(4, dtype=torch.long), 1, 4)
    # return probabilities on a 4-cycle: 0, 2/4, 0, 8/16 (closed ±1 walks whose sum is 0 mod 4)
    assert torch.allclose(pe, torch.tensor([[0.0, 0.5, 0.0, 0.5]]).expand(4, 4))


def test_random_walk_pe_matches_pyg_per_graph():
    gs = graphs()
    b = Batch.from_data_list(gs[:1] + [empty_graph()] + gs[1:])
    pe = random_walk_pe(b.edge_index, b.batch, b.num_graphs, 7)
    ref = torch.cat([AddRandomWalkPE(7, "pe")(Data(edge_index=to_undirected(g.edge_index), num_nodes=g.num_nodes)).pe
                     for g in gs])
    assert torch.allclose(pe, ref, atol=1e-6)


def test_forward_shapes_and_probabilities():
    m = model()
    b = Batch.from_data_list(graphs())
    out = m(b)
    N, E = b.num_nodes, b.edge_index.shape[1]
    assert out["node_reconstruction"].shape == (N, 64)
    assert out["edge_reconstruction"].shape == (E,)
    assert torch.equal(out["edge_reconstruction"], torch.sigmoid(out["pos_edge_logits"]))
    assert out["mu"].shape == out["logvar"].shape == (N, 16)
    assert out["graph_embedding"].shape == (3, 32)
    assert out["node_embeddings"].shape == (N, 32)
    neg = out["neg_edge_index"]
    assert torch.equal(b.batch[neg[0]], b.batch[neg[1]])  # negatives stay inside their graph


def test_sampling_in_training_only():
    m = model()
    b = Batch.from_data_list(graphs())
    m.eval()
    torch.manual_seed(1)
    a = m(b)["node_reconstruction"]
    torch.manual_seed(2)
    assert torch.equal(a, m(b)["node_reconstruction"])  # z = mu
    m.train()
    torch.manual_seed(1)
    assert not torch.allclose(a, m(b)["node_reconstruction"])


def test_logstd_is_clamped():
    m = model()
    torch.nn.init.constant_(m.logstd.bias, 50.0)
    out = m(Batch.from_data_list(graphs()))
    assert out["logvar"].max().item() == pytest.approx(2 * MAX_LOGSTD)


def test_empty_graphs_get_the_learned_embedding():
    m = model()
    with torch.no_grad():
        m.empty_embedding.fill_(0.25)
    out = m(Batch.from_data_list([graphs()[0], empty_graph(), graphs()[1]]))
    assert torch.equal(out["graph_embedding"][1], torch.full((32,), 0.25))
    assert torch.isfinite(out["graph_embedding"]).all()
    out = m(Batch.from_data_list([empty_graph(), empty_graph()]))  # no node at all
    assert out["graph_embedding"].shape == (2, 32)
    assert out["pos_edge_logits"].numel() == 0
    loss = m.recon_loss(out["pos_edge_logits"], out["neg_edge_logits"]) + m.kl_loss(out["mu"], out["logvar"])
    assert loss.item() == 0.0


def test_losses_exact():
    z = torch.zeros(5)
    assert MetabolicGraphVAE.recon_loss(z, z).item() == pytest.approx(2 * torch.log(torch.tensor(2.0)).item())
    mu, logvar = torch.zeros(3, 4), torch.zeros(3, 4)
    assert MetabolicGraphVAE.kl_loss(mu, logvar).item() == 0.0
    assert MetabolicGraphVAE.kl_loss(torch.ones(3, 4), logvar).item() == pytest.approx(0.5 * 4)


def test_gradients_reach_encoder():
    m = model()
    out = m(Batch.from_data_list(graphs()))
    loss = m.recon_loss(out["pos_edge_logits"], out["neg_edge_logits"]) + out["graph_embedding"].sum() \
        + out["node_reconstruction"].sum() + m.kl_loss(out["mu"], out["logvar"])
    loss.backward()
    assert all(p.grad is not None for n, p in m.named_parameters() if n != "empty_embedding")


def test_bad_input_raises():
    with pytest.raises(InputValidationError):
        model()(Data(x=torch.zeros(3, 10), edge_index=torch.zeros(2, 0, dtype=torch.long)))
    with pytest.raises(InputValidationError):
        MetabolicGraphVAE(dataclasses.replace(GraphVAEConfig(), n_heads=3))


def test_xl_has_about_1_2_billion_parameters():
    with torch.device("meta"):
        m = MetabolicGraphVAE(GraphVAEConfig.from_name("xl"))
    n = sum(p.numel() for p in m.parameters())
    assert abs(n - 1.2e9) / 1.2e9 < 0.02


def test_repeated_graphs_encode_once_with_the_same_result():
    # a batch repeating graphs (as environments do) gives exactly the per-graph results of a batch without repeats
    gs = graphs()
    m = model().eval()
    rep = m(Batch.from_data_list([gs[0], gs[1], gs[0], gs[2], gs[1]]))
    ref = m(Batch.from_data_list(gs))
    emb = ref["graph_embedding"]
    assert torch.allclose(rep["graph_embedding"], emb[[0, 1, 0, 2, 1]], atol=1e-6)
    n0, n1 = gs[0].num_nodes, gs[1].num_nodes
    assert torch.allclose(rep["mu"][:n0 + n1], ref["mu"][:n0 + n1], atol=1e-6)
    assert torch.allclose(rep["mu"][n0 + n1:2 * n0 + n1], ref["mu"][:n0], atol=1e-6)
    assert len(m._pe_cache) == 3  # one positional encoding per distinct graph


def test_memoised_pe_equals_recomputed():
    gs = graphs()
    b = Batch.from_data_list(gs)
    m = model()
    keys = graph_keys(b.x, b.edge_index, b.batch, b.num_graphs)
    first = m._positional_encoding(b.edge_index, b.batch, b.num_graphs, keys)
    again = m._positional_encoding(b.edge_index, b.batch, b.num_graphs, keys)  # from the memo
    assert torch.equal(first, again)
    assert torch.allclose(again, random_walk_pe(b.edge_index, b.batch, b.num_graphs, m.config.pe_steps))


def test_negatives_are_in_graph_non_edges_and_seeded():
    from astrobio.models.graph import in_graph_negatives

    b = Batch.from_data_list(graphs())
    torch.manual_seed(3)
    neg = in_graph_negatives(b.edge_index, b.batch)
    torch.manual_seed(3)
    assert torch.equal(neg, in_graph_negatives(b.edge_index, b.batch))
    pos = set(map(tuple, b.edge_index.T.tolist()))
    assert neg.shape[1] > 0 and not any(tuple(e) in pos for e in neg.T.tolist())
    assert (neg[0] != neg[1]).all() and torch.equal(b.batch[neg[0]], b.batch[neg[1]])
