"""The transformer, in TransformerLens's ``HookedTransformer`` layout.

``Transformer`` is the training module: it holds exactly the parameters of a
``HookedTransformer`` (same names, same shapes) and computes the same function, but
only the logits at the last position, which is all the tasks read. In its last layer it
therefore forms the query, attention output and MLP of the last position alone. A checkpoint
of its state dict loads unchanged into TransformerLens's model (``mechgrok.hooked``);
``tests/unit/test_model.py`` checks the two give the same logits on every input.

Biases (a documented choice, as in Nanda et al.'s code): only the MLP biases ``b_in`` and
``b_out`` train. ``b_Q``, ``b_K``, ``b_V``, ``b_O`` and ``b_U`` exist, because
HookedTransformer always has them, but they are buffers fixed at zero.

Initialisation (``init``): ``paper`` follows Nanda et al.'s code, every weight ~ N(0, 1/d_model)
except ``W_U`` ~ N(0, 1/d_vocab); ``he`` follows the miiii code (JAX's ``he_normal`` on its
parameter shapes): each weight ~ N(0, 2/fan_in) truncated at two standard deviations, with
fan_in d_vocab for ``W_E``, n_ctx for ``W_pos``, d_model * n_heads for ``W_Q/W_K/W_V`` (JAX counts
the stacked heads), n_heads * d_head for ``W_O``, d_model for ``W_in``, d_mlp for ``W_out`` and
d_model * T for ``W_U`` (T output heads: the miiii code stacks one unembedding per task). Biases
start at zero; everything is scaled by ``init_scale`` (1 by default).

Dropout (training only, ``dropout_on``): ``sublayer`` drops the attention and MLP outputs
before they join the residual stream; ``residual`` drops the stream itself after each addition,
resid_mid = drop(x + attn_out), resid_post = drop(resid_mid + mlp_out), as the miiii code does.
``dropout_mask``: ``example`` draws a mask per example; ``step`` draws one mask of shape
[1, *x.shape[1:]] shared by every example of the step, as the miiii code does (its model is
``vmap``-ped over examples with one unbatched key: syrkis/miiii ``miiii/model.py``,
``apply_fn``'s ``vmap(in_axes=(None, None, 0))`` and ``dropout_fn``). In evaluation both are
HookedTransformer's function.

The miiii code's other model choices, as options: ``biases="none"`` makes ``b_in``/``b_out``
zero buffers like the other biases (its ``ffwd_fn`` has none); ``mlp_init="tied"`` draws
W_out from W_in's draws (its ``init_ffwd_fn`` passes one key to both ``he_normal`` calls, so
W_out's flat values are W_in's times std_out / std_in, 0.5 at d_mlp = 4 d_model); ``dtype``
float64 (its package sets ``JAX_ENABLE_X64``, ``miiii/__init__.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu}
TRAINED_BIASES = ("b_in", "b_out")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class _Params(nn.Module):
    """A named bag of parameters (and fixed buffers), so state-dict keys read ``attn.W_Q`` etc."""

    def __init__(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor] | None = None):
        super().__init__()
        for name, value in params.items():
            setattr(self, name, nn.Parameter(value))
        for name, value in (buffers or {}).items():
            self.register_buffer(name, value)


def init_std(cfg: ModelConfig, fan_in: int) -> float:
    """The scale of a weight's draws: 1/sqrt(d_model) (``paper``) or sqrt(2/fan_in) (``he``, before truncation)."""
    return math.sqrt(2 / fan_in) if cfg.init == "he" else 1 / math.sqrt(cfg.d_model)


def initial_weight(cfg: ModelConfig, shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
    """One weight at init: N(0, 1/d_model) (``paper``) or N(0, 2/fan_in) truncated at 2 sigma (``he``), times init_scale."""
    if cfg.init == "he":
        # JAX's he_normal draws a unit normal truncated to [-2, 2], rescaled by its std (0.8796) to unit variance
        std = init_std(cfg, fan_in) / 0.87962566103423978
        return nn.init.trunc_normal_(torch.empty(shape), std=std, a=-2 * std, b=2 * std) * cfg.init_scale
    return torch.randn(*shape) * cfg.init_scale / math.sqrt(cfg.d_model)


def mlp_weights(cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """W_in [d_model, d_mlp], W_out [d_mlp, d_model]; ``tied``: W_out = W_in's draws reshaped, times std_out / std_in."""
    d, m = cfg.d_model, cfg.d_mlp
    W_in = initial_weight(cfg, (d, m), d)
    if cfg.mlp_init == "tied":
        W_out = W_in.reshape(m, d) * (init_std(cfg, m) / init_std(cfg, d))
    else:
        W_out = initial_weight(cfg, (m, d), m)
    return {"W_in": W_in, "W_out": W_out}


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, h, e, m = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
        w = lambda fan_in, *shape: initial_weight(cfg, shape, fan_in)  # noqa: E731
        self.attn = _Params(
            {"W_Q": w(d * h, h, d, e), "W_K": w(d * h, h, d, e), "W_V": w(d * h, h, d, e), "W_O": w(h * e, h, e, d)},
            {"b_Q": torch.zeros(h, e), "b_K": torch.zeros(h, e), "b_V": torch.zeros(h, e), "b_O": torch.zeros(d)},
        )
        W = mlp_weights(cfg)
        if cfg.biases == "mlp":  # HookedTransformer's parameter order, which sets the order of every sum over them
            self.mlp = _Params({"W_in": W["W_in"], "b_in": torch.zeros(m), "W_out": W["W_out"], "b_out": torch.zeros(d)})
        else:
            self.mlp = _Params(W, {"b_in": torch.zeros(m), "b_out": torch.zeros(d)})
        self.act = ACTIVATIONS[cfg.act_fn]
        self.attn_scale = math.sqrt(e)
        self.dropout = cfg.dropout
        self.on_residual = cfg.dropout_on == "residual"
        self.shared_mask = cfg.dropout_mask == "step"

    def drop(self, x: torch.Tensor) -> torch.Tensor:
        """Dropout in training mode only: evaluation is HookedTransformer's function."""
        if not (self.dropout and self.training):
            return x
        if self.shared_mask:  # one mask, scaled by 1/(1-p), broadcast over the batch
            return x * F.dropout(x.new_ones((1, *x.shape[1:])), self.dropout, training=True)
        return F.dropout(x, self.dropout, training=True)

    def drop_sublayer(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.on_residual else self.drop(x)

    def drop_residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(x) if self.on_residual else x

    def mlp_out(self, resid_mid: torch.Tensor) -> torch.Tensor:
        """act(x W_in + b_in) W_out + b_out, the biases added inside the matmuls (addmm) on [batch, d] inputs."""
        m = self.mlp
        if resid_mid.dim() == 2:
            return self.drop_sublayer(torch.addmm(m.b_out, self.act(torch.addmm(m.b_in, resid_mid, m.W_in)), m.W_out))
        return self.drop_sublayer(self.act(resid_mid @ m.W_in + m.b_in) @ m.W_out + m.b_out)

    def forward(self, x: torch.Tensor, last_only: bool) -> torch.Tensor:
        """x: [batch, pos, d_model] -> [batch, pos or 1, d_model] (resid_post)."""
        a = self.attn
        x_q = x[:, -1:] if last_only else x
        q, k, v = (_heads(inp, W, b) for inp, W, b in ((x_q, a.W_Q, a.b_Q), (x, a.W_K, a.b_K), (x, a.W_V, a.b_V)))
        # With 3 positions, broadcasting and summing beats thousands of 3x3 batched matmuls.
        scores = (q[:, :, None] * k[:, None]).sum(-1) / self.attn_scale  # [batch, query, key, head]
        if not last_only:  # the last query sees every key, so only earlier queries need the mask
            n = x.shape[1]
            future = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)[..., None]
            scores = scores.masked_fill(future, float("-inf"))
        z = (scores.softmax(2)[..., None] * v[:, None]).sum(2)  # [batch, query, head, d_head]
        attn_out = z.flatten(2) @ a.W_O.flatten(0, 1) + a.b_O
        resid_mid = self.drop_residual(x_q + self.drop_sublayer(attn_out))
        return self.drop_residual(resid_mid + self.mlp_out(resid_mid))


def _heads(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x [batch, pos, d_model], W [head, d_model, d_head] -> x W + b as [batch, pos, head, d_head], in one matmul."""
    return (x @ W.transpose(0, 1).flatten(1)).unflatten(-1, W.shape[::2]) + b


class Transformer(nn.Module):
    """HookedTransformer's function restricted to the last position: tokens [batch, 3] -> logits [batch, d_vocab_out]."""

    def __init__(self, cfg: ModelConfig, d_vocab: int, d_vocab_out: int, out_heads: int = 1):
        super().__init__()
        d = cfg.d_model
        self.embed = _Params({"W_E": initial_weight(cfg, (d_vocab, d), d_vocab)})
        self.pos_embed = _Params({"W_pos": initial_weight(cfg, (3, d), 3)})
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        # the paper's W_U scale is 1/sqrt(d_vocab), not 1/sqrt(d_model)
        W_U = (torch.randn(d, d_vocab_out) * cfg.init_scale / math.sqrt(d_vocab) if cfg.init == "paper"
               else initial_weight(cfg, (d, d_vocab_out), d * out_heads))
        self.unembed = _Params({"W_U": W_U}, {"b_U": torch.zeros(d_vocab_out)})
        self.to(DTYPES[cfg.dtype])  # drawn in float32 whatever the dtype, so float64 runs start from the same weights
        # every input ends in '=', the last vocabulary entry (set by the batched trainer: vmap cannot branch on data)
        self.single_query = False

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if len(self.blocks) == 1:
            return self._forward_one_layer(tokens)
        # F.embedding, not W_E[tokens]: indexing's backward accumulates across threads in a
        # varying order on the CPU, so identical runs would differ in the last bits.
        x = F.embedding(tokens, self.embed.W_E) + self.pos_embed.W_pos[: tokens.shape[1]]
        for i, block in enumerate(self.blocks):
            x = block(x, last_only=i == len(self.blocks) - 1)
        return x[:, -1] @ self.unembed.W_U + self.unembed.b_U

    def _forward_one_layer(self, tokens: torch.Tensor) -> torch.Tensor:
        """The same function for one layer, at a fraction of the cost.

        With a single layer every query, key and value is a function of one (position, token)
        pair, so they are computed once per vocabulary entry (p + 1 rows per position) and
        gathered, instead of once per example; only the last query is needed. Attention then
        costs O(batch * heads * (d_head + d_model)) and the MLP and unembedding dominate.
        """
        block = self.blocks[0]
        a = block.attn
        batch, n_pos = tokens.shape
        resid = self.embed.W_E[None] + self.pos_embed.W_pos[:n_pos, None]  # [pos, vocab, d_model]
        vocab = resid.shape[1]

        def gather(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            # table [vocab, *shape] -> [batch, *shape]; F.embedding for a deterministic backward
            return F.embedding(index, table.reshape(vocab, -1)).reshape(batch, *table.shape[1:])

        keys = torch.einsum("pvd,hde->pvhe", resid, a.W_K) + a.b_K  # [pos, vocab, head, d_head]
        values = torch.einsum("pvd,hde->pvhe", resid, a.W_V) + a.b_V
        last = tokens[:, -1]
        if self.single_query or bool((last == last[0]).all()):
            # Every task ends in '=': one query for the whole batch, so each key position's score is a
            # function of its token alone, a [vocab, head] table; no per-example dot products.
            query = resid[-1, -1] if self.single_query else resid[-1, last[0]]  # '=' is the last vocabulary entry
            q = torch.einsum("d,hde->he", query, a.W_Q) + a.b_Q  # [head, d_head]
            tables = torch.einsum("pvhe,he->pvh", keys, q)  # [pos, vocab, head]
            scores = torch.stack([gather(tables[j], tokens[:, j]) for j in range(n_pos)], 2)  # [batch, head, pos]
        else:
            q = gather(torch.einsum("vd,hde->vhe", resid[-1], a.W_Q) + a.b_Q, last)  # [batch, head, d_head]
            k = torch.stack([gather(keys[j], tokens[:, j]) for j in range(n_pos)], 2)  # [batch, head, pos, d_head]
            scores = (q[:, :, None] * k).sum(-1)
        pattern = (scores / block.attn_scale).softmax(-1)  # the last query sees every key
        v = torch.stack([gather(values[j], tokens[:, j]) for j in range(n_pos)], 2)  # [batch, head, pos, d_head]
        # a weighted sum over 3 positions: broadcasting beats a batched matmul of [1, 3] x [3, d_head] blocks
        z = (pattern[..., None] * v).sum(2)
        attn_out = torch.addmm(a.b_O, z.reshape(batch, -1), a.W_O.reshape(-1, a.W_O.shape[-1]))
        resid_mid = block.drop_residual(gather(resid[-1], last) + block.drop_sublayer(attn_out))
        resid_post = block.drop_residual(resid_mid + block.mlp_out(resid_mid))
        return torch.addmm(self.unembed.b_U, resid_post, self.unembed.W_U)

