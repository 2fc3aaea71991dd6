"""The explorer's per-checkpoint arrays: exact where they claim to be."""

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mechgrok import load_run
from mechgrok.analysis.measures import neuron_clusters
from mechgrok.analysis.trajectory import attention_scores, load_arrays, map_steps, pick_neurons

from ..conftest import LEGACY_RUN

pytestmark = pytest.mark.hooked  # builds TransformerLens's model: make test-tl4 runs it on TL 4


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


# -- explorer.safetensors as a file anyone may have written ------------------------------------------------------
ARRAY_NAMES = ["steps", "picked", "map_steps", "neuron_freq", "neuron_frac", "logit_spectrum", "attention_scores",
               "dimension", "attention_spectrum", "clock", "weight_pca", "weight_pca_explained",
               "maps", "bogus"]
DTYPES = [torch.int64, torch.int16, torch.float16, torch.float32, torch.bool]


@st.composite
def _damage(draw):
    """One change to a valid arrays file: a tensor dropped, or replaced by one of another shape, dtype or values."""
    name = draw(st.sampled_from(ARRAY_NAMES))
    if draw(st.booleans()):
        return name, None
    shape = tuple(draw(st.lists(st.integers(0, 6), max_size=4)))
    dtype = draw(st.sampled_from(DTYPES))
    fill = draw(st.sampled_from([0.0, -1.0, 3.0, 1e5, float("nan"), float("inf")]))
    return name, (shape, dtype, fill)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=_damage(), key_from=st.one_of(st.integers(-5, 10**6), st.none(), st.text(max_size=3)))
@example(damage=("map_steps", ((0,), torch.int64, 0.0)), key_from=0)  # no maps stored: the neuron view says so
def test_any_explorer_arrays_file_loads_checked_or_is_one_line(analysed_every_2, tmp_path_factory, damage, key_from):
    """Whatever explorer.safetensors holds (valid checksum, arbitrary tensors), reading it for the run gives arrays
    every Python view draws from, or one line; the file is left as it was."""
    import shutil

    from mechgrok.analysis import views
    from mechgrok.errors import MechgrokError
    from mechgrok.fileio import load_tensors, save_tensors

    run_dir = tmp_path_factory.mktemp("arrays") / "run"
    shutil.copytree(analysed_every_2, run_dir)
    path = run_dir / "analysis" / "explorer.safetensors"
    loaded = load_tensors(path, "explorer-arrays")
    tensors, meta = dict(loaded.tensors), {**loaded.meta, "key_from_step": key_from}
    name, replacement = damage
    if replacement is None:
        tensors.pop(name, None)
    else:
        shape, dtype, fill = replacement
        value = torch.full(shape, fill).to(dtype) if dtype.is_floating_point else torch.full(shape, fill).nan_to_num(
            0, 0, 0).to(dtype)
        tensors[name] = value
    save_tensors(path, tensors, meta)
    before = path.read_bytes()
    run = load_run(run_dir)
    try:
        arrays = load_arrays(path, run)[0]
    except MechgrokError as err:
        assert "\n" not in str(err)
    else:
        opened = views.open(run)
        step = arrays["steps"].tolist()[-1] if len(arrays["steps"]) else None
        if step is not None and step in opened.steps:
            for view in views.CHECKPOINT_VIEWS:
                try:
                    opened.at(step).view(view)
                except MechgrokError as err:
                    assert "\n" not in str(err)
    assert path.read_bytes() == before


def test_attention_spectra_of_an_embedding_of_one_frequency_stay_on_it():
    from mechgrok.analysis.instruments import attention_spectra

    run = load_run(LEGACY_RUN)
    model, lens = run.model(), run.dataset.lens
    p, k = run.config.data.p, 4
    a = torch.arange(p, dtype=torch.float32)
    W_E = model.W_E.detach().clone()
    W_E[:p] = torch.cos(2 * torch.pi * k * a / p)[:, None] * W_E[0] + torch.sin(2 * torch.pi * k * a / p)[:, None] * W_E[1]
    model.W_E.data.copy_(W_E)
    spectra = attention_spectra(model, attention_scores(model), lens)  # [heads, (QK, OV), n_irreps]
    others = torch.ones(lens.group.n_irreps, dtype=torch.bool)
    others[[0, k]] = False
    assert spectra[:, 1, k].min() > 1e-3 and spectra[:, 1, 1:][:, others[1:]].max() < 1e-4 * spectra[:, 1, k].min()
    assert spectra[:, 1, 0].max() < 1e-4 * spectra[:, 1, k].min()  # cos and sin over a whole period: mean 0
    assert spectra[:, 0, others].max() < 1e-4 * spectra[:, 0, k].max()  # QK: a constant and frequency k only
