"""Forward passes of trained checkpoints through HookedTransformer, and the measures read from them."""

import pytest
import torch

from mechgrok import train
from mechgrok.analysis.circuit import final_checkpoint, measure, run_model
from mechgrok.analysis.measures import lens_clusters
from mechgrok.run import load_run

from ..conftest import small_config

pytestmark = pytest.mark.hooked  # builds TransformerLens's model: make test-tl4 runs it on TL 4


def test_rand_control_task_grows_no_fourier_circuit(tmp_path):
    result = train(small_config(tmp_path, task="rand", steps=300, save_every=300), progress=False)
    assert result.summary["train_acc"] == 1.0  # it memorized its table
    run = load_run(result.run_dir)
    data = run.dataset
    clusters = lens_clusters(data.lens, run_model(run.model(), data).neurons)
    assert clusters.key_frequencies == []
    assert clusters.fraction_clustered == 0.0


def test_measures_of_the_grokked_run_follow_its_circuit(grokked_run):
    run = load_run(grokked_run)
    model, data = run.model(), run.dataset
    final = final_checkpoint(model, data, run.steps[-1])
    key = final.clusters.key_frequencies
    row = measure(model, data, run.steps[-1], key, final.grid).row
    assert key and row.test_acc >= 0.99
    assert row.restricted_loss < 2 * row.test_loss + 1e-3 < row.excluded_loss
    assert row.fraction_clustered == pytest.approx(final.clusters.fraction_clustered)
    # with a key set holding none of the circuit, the restricted loss is near chance
    other = [k for k in range(1, 12) if k not in key][:1]
    assert measure(model, data, run.steps[-1], other, final.grid).row.restricted_loss > 0.5 * torch.log(
        torch.tensor(23.0)).item()
