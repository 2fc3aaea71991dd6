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


def test_panel_basis_on_z_p_is_the_fourier_basis_and_on_div_reads_discrete_logs():
    from mechgrok.analysis.fourier import fourier_basis
    from mechgrok.analysis.group_measures import task_lens
    from mechgrok.analysis.trajectory import panel_basis
    from mechgrok.tasks import make_dataset

    add = make_dataset("add", 11, 0.5, 0)
    z_p = panel_basis(11, task_lens(add))
    torch.testing.assert_close(z_p.basis, fourier_basis(11)[0])
    assert z_p.units == ["const", "k=1", "k=2", "k=3", "k=4", "k=5"] and z_p.tokens == list(range(11))
    div = make_dataset("div", 11, 0.5, 0)
    lens = task_lens(div)
    logs = panel_basis(11, lens)
    g = lens.group.generator
    assert logs.tokens == [pow(g, i, 11) for i in range(10)] and logs.axis == ("log_g a", "log_g b")
    assert logs.unit == "irrep" and logs.units[1] == "k=1" and len(logs.names) == 10
    torch.testing.assert_close(logs.basis @ logs.basis.T, torch.eye(10, dtype=torch.float64))


def test_class_spectrum_finds_the_one_irrep_a_map_was_built_from():
    from mechgrok.analysis.group_measures import group_grid
    from mechgrok.tasks import make_dataset

    lens = group_grid(make_dataset("perm", 4, 0.5, 0))
    basis, owner = lens.group.fourier_basis
    chosen = 3
    rows = basis[torch.tensor(owner) == chosen]  # functions on S_4 in irrep 3 only
    W_L_T = torch.zeros(24, 7, dtype=torch.float64)  # [classes, neurons]
    W_L_T[lens.classes] = rows.T @ torch.randn(len(rows), 7, generator=torch.Generator().manual_seed(0),
                                               dtype=torch.float64)
    spectrum = lens.class_spectrum(W_L_T)
    assert spectrum.argmax().item() == chosen
    assert spectrum[torch.arange(len(spectrum)) != chosen].abs().max() < 1e-10
