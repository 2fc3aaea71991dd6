import torch

from mechgrok import load_run, train
from mechgrok.model import Transformer
from mechgrok.run import load_weights

from ..conftest import small_config


def _assert_same_logits(run, step, inputs=None):
    hooked = run.model(step)
    ours = Transformer(run.config.model, run.d_vocab, run.n_classes)
    load_weights(ours, run.state_dict(step)[0])
    inputs = run.dataset.inputs if inputs is None else inputs
    with torch.no_grad():
        expected = hooked(inputs)[:, -1]
        got = ours(inputs)
    assert expected.shape == (len(inputs), run.n_classes)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


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
