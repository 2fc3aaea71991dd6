import pytest
import torch

from mechgrok import load_run, train
from mechgrok.model import Transformer
from mechgrok.run import load_weights

from ..conftest import small_config

pytestmark = pytest.mark.hooked  # builds TransformerLens's model: make test-tl4 runs it on TL 4


def _assert_same_logits(run, step, inputs=None):
    hooked = run.model(step)
    ours = Transformer(run.config.model, run.d_vocab, run.n_classes)
    load_weights(ours, run.state_dict(step)[0])
    inputs = run.dataset.inputs if inputs is None else inputs
    with torch.no_grad():
        expected = hooked(inputs)[:, -1]
        got = ours(inputs)
    assert expected.shape == (len(inputs), run.n_classes)
    torch.testing.assert_close(got.to(expected.dtype), expected, atol=1e-5, rtol=1e-5)


def test_trained_checkpoint_loads_into_hooked_transformer_with_identical_logits(grokked_run):
    run = load_run(grokked_run)
    _assert_same_logits(run, run.steps[-1])


def test_any_tokens_give_hooked_transformers_logits(grokked_run):
    """The one-layer path has a shortcut for a constant last token ('='); other sequences take the general path."""
    run = load_run(grokked_run)
    tokens = torch.randint(run.d_vocab, (500, 3), generator=torch.Generator().manual_seed(0))
    assert len(set(tokens[:, -1].tolist())) > 1
    _assert_same_logits(run, run.steps[-1], tokens)


def test_two_layer_gelu_model_matches_hooked_transformer(tmp_path):
    run_dir = train(small_config(tmp_path, n_layers=2, act_fn="gelu", steps=30), progress=False).run_dir
    run = load_run(run_dir)
    _assert_same_logits(run, run.steps[-1])


def test_checkpoint_holds_weights_only_and_fixed_zero_biases(grokked_run):
    run = load_run(grokked_run)
    weights, meta = run.state_dict(run.steps[-1])
    assert not any(k.endswith((".mask", ".IGNORE")) for k in weights)
    for name in ("blocks.0.attn.b_Q", "blocks.0.attn.b_O", "unembed.b_U"):
        assert torch.count_nonzero(weights[name]) == 0
    assert torch.count_nonzero(weights["blocks.0.mlp.b_in"]) > 0  # trained
    assert meta["step"] == run.steps[-1] and meta["config"]["p"] == 23
    assert {"train_loss", "test_loss", "train_acc", "test_acc"} <= set(meta["metrics"])


def test_dropout_acts_in_training_mode_only():
    from mechgrok import ModelConfig

    torch.manual_seed(0)
    model = Transformer(ModelConfig(d_model=32, d_head=8, d_mlp=64, dropout=0.5), 24, 23)
    plain = Transformer(ModelConfig(d_model=32, d_head=8, d_mlp=64), 24, 23)
    plain.load_state_dict(model.state_dict())
    tokens = torch.tensor([[1, 2, 23], [5, 7, 23]])
    model.eval()
    torch.testing.assert_close(model(tokens), plain.eval()(tokens))
    model.train()
    assert not torch.allclose(model(tokens), plain(tokens))


def _silent_sublayers(model):
    """Zero the attention and MLP outputs: the last position's resid_post is then its embedding alone."""
    with torch.no_grad():
        for block in model.blocks:
            block.attn.W_O.zero_()
            block.mlp.W_out.zero_()
            block.mlp.b_out.zero_()
    return model


def test_residual_dropout_drops_the_stream_itself():
    """With silent sublayers, sublayer dropout leaves the logits alone while residual dropout drops the stream
    twice per layer: in expectation the eval logits (inverted dropout), per draw not."""
    from mechgrok import ModelConfig

    tokens = torch.tensor([[1, 2, 23], [5, 7, 23]])
    for n_layers in (1, 2):  # the one-layer shortcut and the general path
        torch.manual_seed(0)
        kw = dict(n_layers=n_layers, d_model=32, d_head=8, d_mlp=64, dropout=0.5)
        sublayer = _silent_sublayers(Transformer(ModelConfig(**kw), 24, 23))
        residual = Transformer(ModelConfig(**kw, dropout_on="residual"), 24, 23)
        residual.load_state_dict(sublayer.state_dict())
        with torch.no_grad():
            expected = sublayer.eval()(tokens)
            torch.testing.assert_close(sublayer.train()(tokens), expected)
            torch.testing.assert_close(residual.eval()(tokens), expected)
            residual.train()
            assert not torch.allclose(residual(tokens), expected)
            mean = residual(tokens.repeat(4000, 1)).reshape(4000, *expected.shape).mean(0)  # a mask per example
        assert (mean - expected).abs().max() < 0.1 * expected.abs().max()


def test_he_init_has_the_miiii_codes_scales():
    """init='he': std sqrt(2 / fan_in) per weight (fan_in as JAX counts it on the miiii code's shapes),
    truncated at two standard deviations of the underlying normal."""
    from mechgrok import ModelConfig

    torch.manual_seed(0)
    d, h, e, m, vocab, out, heads = 64, 4, 16, 256, 114, 1480, 29
    model = Transformer(ModelConfig(d_model=d, n_heads=h, d_head=e, d_mlp=m, init="he"), vocab, out, heads)
    fan_in = {"embed.W_E": vocab, "blocks.0.attn.W_Q": d * h, "blocks.0.attn.W_O": h * e,
              "blocks.0.mlp.W_in": d, "blocks.0.mlp.W_out": m, "unembed.W_U": d * heads}
    weights = dict(model.named_parameters())
    for name, n in fan_in.items():
        w, std = weights[name].detach(), (2 / n) ** 0.5
        assert abs(w.std().item() / std - 1) < 0.05, name
        assert w.abs().max().item() <= 2 * std / 0.87962566103423978 + 1e-6, name
    paper = Transformer(ModelConfig(d_model=d, n_heads=h, d_head=e, d_mlp=m), vocab, out, heads)
    assert abs(paper.blocks[0].mlp.W_in.std().item() * d ** 0.5 - 1) < 0.05  # the paper's N(0, 1/d_model)


def test_step_dropout_mask_drops_the_same_units_for_every_example():
    """dropout_mask='step' (the miiii code's unbatched key): one mask for the whole batch; 'example': one each."""
    from mechgrok import ModelConfig
    from mechgrok.model import Block

    torch.manual_seed(0)
    x = torch.ones(64, 3, 32)
    for mask, shared in (("step", True), ("example", False)):
        block = Block(ModelConfig(d_model=32, d_head=8, d_mlp=64, dropout=0.5, dropout_mask=mask)).train()
        dropped = block.drop(x)
        assert set(dropped.unique().tolist()) == {0.0, 2.0}  # inverted dropout: kept units scaled by 1 / (1 - p)
        same = bool((dropped == dropped[:1]).all())
        assert same == shared, mask
        assert torch.equal(block.eval().drop(x), x)


def test_no_biases_leaves_b_in_b_out_zero_buffers_that_hooked_transformer_loads(tmp_path):
    run_dir = train(small_config(tmp_path, biases="none", steps=20), progress=False).run_dir
    run = load_run(run_dir)
    weights = run.state_dict(run.steps[-1])[0]
    for name in ("blocks.0.mlp.b_in", "blocks.0.mlp.b_out"):
        assert torch.count_nonzero(weights[name]) == 0
    model = Transformer(run.config.model, run.d_vocab, run.n_classes)
    trained = {name for name, _ in model.named_parameters()}
    assert "blocks.0.mlp.b_in" not in trained and "blocks.0.mlp.W_in" in trained
    _assert_same_logits(run, run.steps[-1])


def test_tied_mlp_init_draws_w_out_from_w_ins_draws():
    """mlp_init='tied' (the miiii code's one key for both): W_out's flat values are W_in's times std_out / std_in,
    exactly 0.5 under He init with d_mlp = 4 d_model; training weights otherwise independent."""
    from mechgrok import ModelConfig

    torch.manual_seed(0)
    tied = Transformer(ModelConfig(d_model=32, d_head=8, d_mlp=128, init="he", mlp_init="tied"), 24, 23).blocks[0].mlp
    torch.testing.assert_close(tied.W_out.detach().flatten(), 0.5 * tied.W_in.detach().flatten(), rtol=0, atol=0)
    paper = Transformer(ModelConfig(d_model=32, d_head=8, d_mlp=128, mlp_init="tied"), 24, 23).blocks[0].mlp
    assert torch.equal(paper.W_out.detach().flatten(), paper.W_in.detach().flatten())  # both N(0, 1/d_model)
    free = Transformer(ModelConfig(d_model=32, d_head=8, d_mlp=128, init="he"), 24, 23).blocks[0].mlp
    assert not torch.allclose(free.W_out.detach().flatten(), 0.5 * free.W_in.detach().flatten())


def test_float64_training_writes_float64_checkpoints_hooked_transformer_reads(tmp_path):
    run_dir = train(small_config(tmp_path, dtype="float64", steps=20), progress=False).run_dir
    run = load_run(run_dir)
    weights = run.state_dict(run.steps[-1])[0]
    assert weights["embed.W_E"].dtype == torch.float64
    model = Transformer(run.config.model, run.d_vocab, run.n_classes)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    # the same initial draws as float32, then float64 arithmetic
    torch.manual_seed(0)
    f32 = Transformer(small_config(tmp_path / "x").model, run.d_vocab, run.n_classes)
    torch.manual_seed(0)
    f64 = Transformer(small_config(tmp_path / "y", dtype="float64").model, run.d_vocab, run.n_classes)
    assert torch.equal(f64.embed.W_E.float(), f32.embed.W_E)
    _assert_same_logits(run, run.steps[-1])  # HookedTransformer (float32) agrees to float32 precision
