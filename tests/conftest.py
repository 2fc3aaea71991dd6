import pytest

from mechgrok import TrainConfig, train

# A small model that groks p=23 addition in a few hundred full-batch steps (seconds on a CPU).
FAST_GROK = dict(task="add", p=23, frac_train=0.6, lr=3e-3, weight_decay=3.0, d_model=64, d_head=16,
                 d_mlp=256, log_every=10)


def small_config(tmp_path, **overrides) -> TrainConfig:
    values = {**FAST_GROK, "steps": 40, "save_every": 10, "out": str(tmp_path / "run"), **overrides}
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def grokked_run(tmp_path_factory):
    """A p=23 addition run trained past grokking, shared by the analysis tests."""
    out = tmp_path_factory.mktemp("grokked") / "run"
    result = train(TrainConfig(**{**FAST_GROK, "steps": 1500, "save_every": 50, "out": str(out)}), progress=False)
    assert result.summary["test_acc"] >= 0.99, result.summary
    return out
