"""The explorer's per-checkpoint arrays: exact where they claim to be."""

import torch

from mechgrok import load_run
from mechgrok.analysis.measures import neuron_clusters
from mechgrok.analysis.trajectory import attention_scores, map_steps, pick_neurons

from ..conftest import LEGACY_RUN


def test_attention_maps_rebuilt_from_score_tables_equal_hooked_transformers_pattern():
    run = load_run(LEGACY_RUN)
    model, inputs = run.model(), run.dataset.inputs
    _, cache = model.run_with_cache(inputs, names_filter="blocks.0.attn.hook_pattern")
    pattern = cache["blocks.0.attn.hook_pattern"][:, :, -1, :]  # [N, heads, key position]
    s = attention_scores(model)  # [heads, 3, d_vocab]
    rebuilt = torch.stack([s[:, j, inputs[:, j]] for j in range(3)], -1).permute(1, 0, 2).softmax(-1)
    torch.testing.assert_close(rebuilt, pattern, atol=1e-5, rtol=0)


def test_picked_neurons_come_from_the_key_clusters_and_map_steps_are_spread():
    g = torch.Generator().manual_seed(0)
    a = torch.arange(11.0)[:, None, None]
    clean = torch.cos(2 * torch.pi * 3 * a / 11).expand(11, 11, 4)  # four neurons all frequency 3
    noise = torch.randn(11, 11, 3, generator=g)
    clusters = neuron_clusters(torch.cat([clean, noise], -1), min_neurons=3)
    picked = pick_neurons(clusters, [3])
    assert set(picked[:3]) <= {0, 1, 2, 3} and all(n >= 4 for n in picked[3:])
    steps = list(range(0, 20001, 100))
    chosen = map_steps(steps)
    assert len(chosen) <= 26 and chosen[0] == 0 and chosen[-1] == 20000
    assert map_steps([0, 10, 20]) == [0, 10, 20]


def test_neuron_logit_spectrum_finds_the_one_irrep_a_map_was_built_from():
    from mechgrok.tasks import make_dataset

    lens = make_dataset("perm", 4, 0.5, 0).lens
    chosen = 3
    rows = lens.group.basis[lens.group.owner == chosen]  # functions on S_4 in irrep 3 only
    W_L_T = torch.zeros(24, 7, dtype=torch.float64)  # [classes, neurons]
    W_L_T[lens.classes] = rows.T @ torch.randn(len(rows), 7, generator=torch.Generator().manual_seed(0),
                                               dtype=torch.float64)
    spectrum = lens.group.spectrum(W_L_T[lens.classes])
    assert spectrum.argmax().item() == chosen
    assert spectrum[torch.arange(len(spectrum)) != chosen].abs().max() < 1e-10
