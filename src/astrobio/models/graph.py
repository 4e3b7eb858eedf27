"""Metabolic network graph VAE (seed name `RebuiltGraphVAE`): a graph transformer encoder with structural
positional encoding, a variational latent per node (Kipf & Welling 2016 VGAE), an inner-product edge
decoder, a node-feature decoder and a graph-level embedding.

- Encoder: `torch_geometric.nn.TransformerConv` (Shi et al. 2021), edge-aware multi-head attention. The
  metabolic graphs carry no edge attributes, so message passing runs over the edges *and* their reverses,
  and a learned edge-type embedding (forward / reverse) is the edge feature the attention sees.
- Structural positional encoding: random-walk PE (Dwivedi et al. 2022, as
  `torch_geometric.transforms.AddRandomWalkPE`): the return probabilities diag(P^k), k = 1..K, of the
  random walk P = D⁻¹A on the undirected graph (sparse × per-graph dense blocks; graphs here have ≲ 10³
  nodes), memoised per graph by content key, and each distinct graph of a batch is encoded once.
- Latent: `mu`, `logstd` clamped at MAX_LOGSTD = 10 (PyG VGAE convention); `logvar = 2·logstd`;
  reparameterised sampling in training only, `z = mu` in eval.
- Edge reconstruction: negatives sampled within each graph (vectorised, from the torch RNG).
- Graph embedding: attention pooling (gated softmax per graph, Li et al. 2016) concatenated with mean
  pooling; a sample with an empty graph gets a learned "empty graph" embedding.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Dict

import torch
import torch.nn as nn
import torch.nn.functional as F

from astrobio.errors import InputValidationError
from astrobio.models.presets import preset_entry

MAX_LOGSTD = 10.0  # torch_geometric.nn.models.autoencoder.MAX_LOGSTD
PE_CACHE_GRAPHS = 4096  # distinct graphs whose positional encodings are memoised (oldest dropped first)


@dataclass
class GraphVAEConfig:
    node_features: int = 64
    """Node feature width of the metabolic graphs (`world.metabolism.metabolic_graph`)."""
    hidden_dim: int = 32
    """Width H of the encoder (and of the graph embedding)."""
    latent_dim: int = 16
    """Per-node latent width Z."""
    n_layers: int = 2
    """TransformerConv layers."""
    n_heads: int = 2
    """Attention heads per layer (divide `hidden_dim`)."""
    mlp_ratio: float = 2.0
    """Feed-forward width after each conv, as a multiple of `hidden_dim`."""
    pe_steps: int = 4
    """Random-walk PE steps K."""
    edge_dim: int = 8
    """Width of the learned edge-type (forward / reverse) features the attention sees."""
    dropout: float = 0.0
    """Dropout on the attention coefficients and feed-forward outputs."""

    @classmethod
    def from_name(cls, name: str) -> "GraphVAEConfig":
        """Preset `name` from the one table, `astrobio.models.presets.PRESETS`."""
        return cls(**preset_entry(name, "graph"))


@torch.no_grad()
def random_walk_pe(edge_index: torch.Tensor, batch: torch.Tensor, num_graphs: int, steps: int) -> torch.Tensor:
    """Return probabilities diag(P^k), k = 1..steps, of the walk P = D⁻¹A on the undirected graph → [N, steps].

    Each graph's P^k is kept as a dense [n, n] block, stacked as rows of a [G·n, n] matrix (n = largest
    graph), and advanced by one sparse product P·P^(k-1): cost O(steps · E · n), not O(steps · n³)."""
    from torch_geometric.utils import to_dense_batch

    N, dev = batch.numel(), batch.device
    if N == 0 or edge_index.numel() == 0:
        return torch.zeros(N, steps, device=dev)
    mask = to_dense_batch(torch.ones(N, 1, device=dev), batch, batch_size=num_graphs)[1]  # (G, n)
    n = mask.shape[1]
    local = mask.long().cumsum(1)[mask] - 1  # (N,) index of each node inside its graph
    row_of = batch * n + local  # (N,) row in the padded [G·n] space
    und = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    A = torch.sparse_coo_tensor(row_of[und], torch.ones(und.shape[1], device=dev), (num_graphs * n,) * 2,
                                check_invariants=True).coalesce()
    vals = A.values().clamp(max=1.0)  # multi-edges count once
    r, c = A.indices()
    deg = torch.zeros(num_graphs * n, device=dev).index_add_(0, r, vals)
    P = torch.sparse_coo_tensor(A.indices(), vals / deg[r], A.shape, check_invariants=True).coalesce()  # (G·n, G·n)
    M = torch.zeros(num_graphs * n, n, device=dev)
    M[r, c % n] = P.values()  # P^1 as stacked blocks
    cols = [M[row_of, local]]
    with warnings.catch_warnings():  # "sparse CSR support is in beta"; CSR × dense is 2× faster than COO on CPU
        warnings.simplefilter("ignore", UserWarning)
        P = P.to_sparse_csr()
        for _ in range(steps - 1):
            M = P @ M  # (G·n, n) stacked blocks of P^k
            cols.append(M[row_of, local])
    return torch.stack(cols, dim=-1)  # (N, steps)


def in_graph_negatives(edge_index: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """Non-edges sampled within each graph, one candidate per positive edge (Kipf & Welling 2016 GAE).

    Each candidate's source and target are uniform over the nodes of the positive edge's graph; candidates
    that are self-loops or existing (directed) edges are dropped, so ≲ E negatives come back. Vectorised in
    torch and drawn from the torch RNG, so `torch.manual_seed` alone makes them reproducible (PyG's
    `batched_negative_sampling` loops over graphs in Python, ~5% of a `small` training step)."""
    if edge_index.shape[1] == 0:
        return edge_index.new_zeros(2, 0)
    N = batch.numel()
    counts = torch.bincount(batch, minlength=int(batch.max()) + 1)
    offsets = torch.cumsum(counts, 0) - counts
    g = batch[edge_index[0]]  # (E,) graph of each positive edge
    n, o = counts[g].to(torch.float64), offsets[g]
    src = o + (torch.rand(g.shape, dtype=torch.float64, device=g.device) * n).long().clamp(max=(n - 1).long())
    dst = o + (torch.rand(g.shape, dtype=torch.float64, device=g.device) * n).long().clamp(max=(n - 1).long())
    keep = (src != dst) & ~torch.isin(src * N + dst, edge_index[0] * N + edge_index[1])
    return torch.stack([src[keep], dst[keep]])


def graph_keys(x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> list[bytes]:
    """A content key per graph of a batch (BLAKE2b of its node features and its edges in local numbering):
    equal keys mean identical graphs (a collision has probability ~2⁻¹²⁸)."""
    import hashlib

    counts = torch.bincount(batch, minlength=num_graphs).tolist()
    node_start = [0]
    for c in counts:
        node_start.append(node_start[-1] + c)
    eg = batch[edge_index[0]] if edge_index.numel() else edge_index.new_zeros(0)
    order = torch.argsort(eg, stable=True)
    e_sorted = edge_index[:, order]
    e_counts = torch.bincount(eg, minlength=num_graphs).tolist()
    keys, e0 = [], 0
    x_np, e_np = x.detach().cpu().numpy(), e_sorted.cpu().numpy()
    for gi in range(num_graphs):
        a, b = node_start[gi], node_start[gi + 1]
        local = e_np[:, e0:e0 + e_counts[gi]] - a
        e0 += e_counts[gi]
        h = hashlib.blake2b(digest_size=16)
        h.update(int(b - a).to_bytes(8, "little"))
        h.update(x_np[a:b].tobytes())
        h.update(local.tobytes())
        keys.append(h.digest())
    return keys


def unique_graphs(x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor, num_graphs: int):
    """The distinct graphs of a batch (metabolic graphs repeat per environment): `(x_u, edge_index_u, batch_u,
    n_unique, node_map [N], graph_map [G], keys_u)`, where node i of the batch is node `node_map[i]` of the
    unique batch and graph g is unique graph `graph_map[g]`."""
    keys = graph_keys(x, edge_index, batch, num_graphs)
    first: dict[bytes, int] = {}
    graph_map = [first.setdefault(k, len(first)) for k in keys]
    rep_graph = [keys.index(k) for k in first]  # the first batch graph of each unique key (ascending)
    counts = torch.bincount(batch, minlength=num_graphs)
    starts = torch.cumsum(counts, 0) - counts
    dev = x.device
    rep = torch.tensor(rep_graph, dtype=torch.long, device=dev)
    u_counts = counts[rep]
    u_starts = torch.cumsum(u_counts, 0) - u_counts
    gm = torch.tensor(graph_map, dtype=torch.long, device=dev)
    node_map = u_starts[gm][batch] + (torch.arange(batch.numel(), device=dev) - starts[batch])  # (N,)
    is_rep_node = torch.isin(batch, rep)
    x_u = x[is_rep_node]
    batch_u = torch.repeat_interleave(torch.arange(len(rep_graph), device=dev), u_counts)
    e_keep = is_rep_node[edge_index[0]] if edge_index.numel() else torch.zeros(0, dtype=torch.bool, device=dev)
    edge_index_u = node_map[edge_index[:, e_keep]]
    return x_u, edge_index_u, batch_u, len(rep_graph), node_map, gm, list(first)


class ConvLayer(nn.Module):
    """TransformerConv (edge-aware attention, gated skip) + feed-forward, both residual with LayerNorm."""

    def __init__(self, c: GraphVAEConfig):
        super().__init__()
        from torch_geometric.nn import TransformerConv

        H = c.hidden_dim
        self.conv = TransformerConv(H, H // c.n_heads, heads=c.n_heads, edge_dim=c.edge_dim, beta=True,
                                    dropout=c.dropout)
        self.norm1 = nn.LayerNorm(H)
        self.ff = nn.Sequential(nn.Linear(H, int(H * c.mlp_ratio)), nn.GELU(), nn.Linear(int(H * c.mlp_ratio), H),
                                nn.Dropout(c.dropout))
        self.norm2 = nn.LayerNorm(H)

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        h = self.norm1(h + self.conv(h, edge_index, edge_attr))
        return self.norm2(h + self.ff(h))


class MetabolicGraphVAE(nn.Module):
    """Variational graph transformer over PyG batches. Seed alias: `RebuiltGraphVAE`."""

    def __init__(self, config: GraphVAEConfig):
        super().__init__()
        c = self.config = config
        if c.hidden_dim % c.n_heads:
            raise InputValidationError("n_heads", c.n_heads, f"a divisor of hidden_dim={c.hidden_dim}")
        H, Z = c.hidden_dim, c.latent_dim
        self.gradient_checkpointing = False
        self.node_in = nn.Linear(c.node_features, H)
        self.pe_in = nn.Linear(c.pe_steps, H)
        self.edge_type = nn.Embedding(2, c.edge_dim)  # 0 = stored direction, 1 = reverse
        self.layers = nn.ModuleList(ConvLayer(c) for _ in range(c.n_layers))
        self.mu = nn.Linear(H, Z)
        self.logstd = nn.Linear(H, Z)
        self.node_decoder = nn.Sequential(nn.Linear(Z, H), nn.GELU(), nn.Linear(H, c.node_features))
        self.pool_gate = nn.Linear(H, 1)
        self.pool_out = nn.Linear(2 * H, H)
        self.empty_embedding = nn.Parameter(torch.zeros(H))
        self._pe_cache: dict[bytes, torch.Tensor] = {}  # graph content key -> PE [n, K]; not model state

    def encode(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor, num_graphs: int,
               keys: list[bytes] | None = None):
        """→ node states `h [N, H]`, `mu [N, Z]`, `logstd [N, Z]` (clamped at MAX_LOGSTD). With `keys` (one
        content key per graph, `graph_keys`) the positional encodings are memoised per graph."""
        from torch.utils.checkpoint import checkpoint

        E = edge_index.shape[1]
        ei = torch.cat([edge_index, edge_index.flip(0)], dim=1)  # (2, 2E)
        etype = torch.cat([torch.zeros(E, dtype=torch.long), torch.ones(E, dtype=torch.long)]).to(x.device)
        edge_attr = self.edge_type(etype)  # (2E, edge_dim)
        pe = self._positional_encoding(edge_index, batch, num_graphs, keys).to(x.dtype)
        h = self.node_in(x) + self.pe_in(pe)  # (N, H)
        for layer in self.layers:
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                h = checkpoint(layer, h, ei, edge_attr, use_reentrant=False)
            else:
                h = layer(h, ei, edge_attr)
        return h, self.mu(h), self.logstd(h).clamp(max=MAX_LOGSTD)

    def _positional_encoding(self, edge_index: torch.Tensor, batch: torch.Tensor, num_graphs: int,
                             keys: list[bytes] | None) -> torch.Tensor:
        """`random_walk_pe`, memoised by graph content key: the PE is a function of the graph alone, and the
        same few metabolic graphs (one per environment) recur in every batch."""
        steps = self.config.pe_steps
        if keys is None:
            return random_walk_pe(edge_index, batch, num_graphs, steps)
        if any(k not in self._pe_cache for k in keys):
            pe = random_walk_pe(edge_index, batch, num_graphs, steps)
            for k, part in zip(keys, torch.split(pe, torch.bincount(batch, minlength=num_graphs).tolist())):
                if len(self._pe_cache) >= PE_CACHE_GRAPHS:
                    self._pe_cache.pop(next(iter(self._pe_cache)))  # oldest first
                self._pe_cache[k] = part.detach()
            return pe
        return torch.cat([self._pe_cache[k].to(batch.device) for k in keys]) if keys else \
            torch.zeros(0, steps, device=batch.device)

    def reparametrize(self, mu: torch.Tensor, logstd: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(logstd) * torch.exp(logstd) if self.training else mu

    def pool(self, h: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        """Attention + mean pooling per graph → [num_graphs, H]; empty graphs → learned embedding."""
        from torch_geometric.utils import scatter, softmax

        gate = softmax(self.pool_gate(h), batch, num_nodes=h.shape[0])  # (N, 1), sums to 1 per graph
        att = scatter(gate * h, batch, 0, dim_size=num_graphs, reduce="sum")  # (G, H)
        mean = scatter(h, batch, 0, dim_size=num_graphs, reduce="mean")  # (G, H)
        count = torch.bincount(batch, minlength=num_graphs).unsqueeze(-1)  # (G, 1)
        pooled = self.pool_out(torch.cat([att, mean], dim=-1))
        return torch.where(count > 0, pooled, self.empty_embedding.expand_as(pooled))

    def forward(self, data) -> Dict[str, torch.Tensor]:
        """data: PyG Data/Batch with `x [N, node_features]`, `edge_index [2, E]` (and `batch [N]`).

        Identical graphs in a batch (one metabolic network per environment) are encoded once and their node
        states shared; the latent sample, the negatives and the losses stay per sample. Exact when the
        encoder has no dropout (it is then deterministic); with dropout in training every graph is encoded."""
        x, edge_index = data.x, data.edge_index
        if x.dim() != 2 or x.shape[1] != self.config.node_features:
            raise InputValidationError("graph.x shape", tuple(x.shape), f"[N, {self.config.node_features}]")
        batch = data.batch if getattr(data, "batch", None) is not None else \
            torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        G = int(getattr(data, "num_graphs", 1) or 1)
        if self.training and self.config.dropout > 0:
            h, mu, logstd = self.encode(x, edge_index, batch, G)
            pooled = self.pool(h, batch, G)
        else:
            xu, eu, bu, n_unique, node_map, graph_map, keys = unique_graphs(x, edge_index, batch, G)
            hu, mu_u, logstd_u = self.encode(xu, eu, bu, n_unique, keys)
            pooled = self.pool(hu, bu, n_unique)[graph_map]
            h, mu, logstd = hu[node_map], mu_u[node_map], logstd_u[node_map]
        z = self.reparametrize(mu, logstd)  # (N, Z)
        neg = in_graph_negatives(edge_index, batch)  # (2, ~E)
        pos_logits = (z[edge_index[0]] * z[edge_index[1]]).sum(-1)  # (E,) inner-product decoder
        neg_logits = (z[neg[0]] * z[neg[1]]).sum(-1)
        return {
            "node_reconstruction": self.node_decoder(z),  # (N, node_features)
            "edge_reconstruction": torch.sigmoid(pos_logits),  # (E,)
            "pos_edge_logits": pos_logits,
            "neg_edge_logits": neg_logits,
            "neg_edge_index": neg,
            "mu": mu,
            "logvar": 2.0 * logstd,
            "graph_embedding": pooled,  # (G, H)
            "node_embeddings": h,
        }

    @staticmethod
    def recon_loss(pos_logits: torch.Tensor, neg_logits: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of positive edges vs sampled negatives (PyG GAE.recon_loss, logit form)."""
        pos = F.binary_cross_entropy_with_logits(pos_logits, torch.ones_like(pos_logits)) \
            if pos_logits.numel() else pos_logits.sum()
        neg = F.binary_cross_entropy_with_logits(neg_logits, torch.zeros_like(neg_logits)) \
            if neg_logits.numel() else neg_logits.sum()
        return pos + neg

    @staticmethod
    def kl_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) ‖ N(0, I)), summed over latent dims, averaged over nodes (PyG VGAE.kl_loss)."""
        if mu.shape[0] == 0:
            return mu.sum()
        return -0.5 * torch.mean(torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=1))
