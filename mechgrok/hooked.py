"""The hooked model: a run's checkpoint in TransformerLens, on TransformerLens 3 or 4.

This is the one module that imports TransformerLens; the analysis, the views, the notebooks and
``Run.model(step)`` get their model here.

- TL 3.x: ``HookedTransformer(HookedTransformerConfig(...))``; a checkpoint (our state dict, in
  HookedTransformer's layout) loads with a plain ``load_state_dict``.
- TL 4.x removed ``HookedTransformer``. ``TransformerBridge.boot_native(TransformerBridgeConfig(...))``
  builds the same architecture from a config with no hub call, and
  ``transformer_lens.conversion_utils.convert_tl_checkpoint`` turns a HookedTransformer-layout state dict
  into the bridge's keys (``blocks.0.attn.q.weight``, ...), which then load with ``strict=True``.

Both answer to the 3.x hook names the analysis registers (``hook_embed``, ``blocks.L.mlp.hook_post``,
``blocks.L.hook_resid_mid``, ``blocks.0.attn.hook_pattern``) and the 3.x weight names it reads (``W_E``,
``W_pos``, ``W_U``, ``blocks[L].attn.W_Q`` [heads, d_model, d_head], ``blocks[L].mlp.W_out``, ...). One
difference: on TL 4 a hook registered as ``blocks.0.mlp.hook_post`` is called with ``hook.name ==
'blocks.0.mlp.out.hook_in'``, so no hook in this package reads ``hook.name``. Logits agree between the two to
float32 rounding (2e-6 on a trained p=23 model; tests/unit/test_hooked.py).
"""

from __future__ import annotations

import importlib.metadata
from functools import lru_cache
from typing import TYPE_CHECKING

import torch

from .config import ModelConfig
from .errors import MechgrokError

if TYPE_CHECKING:  # importing TransformerLens takes seconds; training never needs it
    from transformer_lens import HookedTransformer

    HookedModel = HookedTransformer  # or, on TL 4, a TransformerBridge: the same hook and weight names

SUPPORTED_MAJORS = (3, 4)
N_CTX = 3  # [a, b, =]


@lru_cache(maxsize=1)
def tl_major() -> int:
    """The installed TransformerLens's major version (3 or 4), read without importing it."""
    try:
        version = importlib.metadata.version("transformer-lens")
    except importlib.metadata.PackageNotFoundError:
        raise MechgrokError("TransformerLens is not installed (pip install 'transformer-lens>=3,<5')") from None
    major = int(version.split(".")[0])
    if major not in SUPPORTED_MAJORS:
        raise MechgrokError(f"TransformerLens {version} is installed; mechgrok reads models with 3.x or 4.x")
    return major


def _config_fields(cfg: ModelConfig, d_vocab: int, d_vocab_out: int) -> dict:
    """The fields both majors' configs share: exactly this run's parameters, no LayerNorm, no global seeding
    (``seed=None``: a seed there would reseed torch, numpy and random globally)."""
    return dict(n_layers=cfg.n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads, d_head=cfg.d_head, d_mlp=cfg.d_mlp,
                d_vocab=d_vocab, d_vocab_out=d_vocab_out, n_ctx=N_CTX, act_fn=cfg.act_fn, normalization_type=None,
                attn_only=False, positional_embedding_type="standard", seed=None)


def hooked_config(cfg: ModelConfig, d_vocab: int, d_vocab_out: int, device: str = "cpu"):
    """The TransformerLens config (HookedTransformerConfig on 3.x, TransformerBridgeConfig on 4.x) of this run."""
    fields = _config_fields(cfg, d_vocab, d_vocab_out)
    if tl_major() == 3:
        from transformer_lens import HookedTransformerConfig

        return HookedTransformerConfig(**fields, device=device)
    from transformer_lens import TransformerBridgeConfig

    return TransformerBridgeConfig(**fields, default_prepend_bos=False)


def build_model(cfg: ModelConfig, d_vocab: int, d_vocab_out: int, device: str = "cpu") -> HookedModel:
    """An untrained hooked model of this run's shape: HookedTransformer (TL 3) or TransformerBridge (TL 4)."""
    config = hooked_config(cfg, d_vocab, d_vocab_out, device)
    if tl_major() == 3:
        from transformer_lens import HookedTransformer

        return HookedTransformer(config)
    from transformer_lens import TransformerBridge

    model = TransformerBridge.boot_native(config, device=device)
    model.mechgrok_config = config  # convert_tl_checkpoint needs it for every checkpoint loaded
    return model


def load_checkpoint(model: HookedModel, weights: dict[str, torch.Tensor]) -> None:
    """Load a checkpoint's weights (HookedTransformer layout, any float type) into ``model`` as they are: no
    LayerNorm folding, no centring (``load_and_process_state_dict`` would change the logits)."""
    if tl_major() == 3:
        merged = model.state_dict()  # the model's own buffers (attn.mask, IGNORE: their shapes vary across 3.x)
        merged.update({k: v.to(merged[k].device, merged[k].dtype) for k, v in weights.items()})
        model.load_state_dict(merged, strict=True)
        return
    from transformer_lens.conversion_utils import convert_tl_checkpoint

    own = model.state_dict()
    converted = convert_tl_checkpoint({k: v.float() for k, v in weights.items()}, model.mechgrok_config)
    model.load_state_dict({k: v.to(own[k].device, own[k].dtype) for k, v in converted.items()}, strict=True)


def model_of(cfg: ModelConfig, d_vocab: int, d_vocab_out: int, weights: dict[str, torch.Tensor],
             device: str = "cpu") -> HookedModel:
    """A hooked model holding ``weights``, in eval mode."""
    model = build_model(cfg, d_vocab, d_vocab_out, device)
    load_checkpoint(model, weights)
    return model.eval()
