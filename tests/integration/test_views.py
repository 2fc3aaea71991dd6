"""The explorer's views in Python: ``views.open(run).at(step).view(name)``, one plotly Figure each."""

import pytest

pytestmark = pytest.mark.hooked  # builds TransformerLens's model: make test-tl4 runs it on TL 4


def test_every_view_in_python_at_a_checkpoint(analysed_every_2):
    from mechgrok import MechgrokError, load_run
    from mechgrok.analysis.views import VIEWS, open as open_views, widget

    run = load_run(analysed_every_2)
    steps = open_views(run).steps
    middle = steps[len(steps) // 2]
    checkpoint = open_views(run).at(middle)
    for name in VIEWS:
        fig = checkpoint.view(name)
        assert fig.layout.title.text and fig.data, name
    assert str(middle) in checkpoint.view("embedding_spectrum").layout.title.text
    attention = checkpoint.view("attention").data[0].z
    assert attention.shape == (23, 23) and float(attention.min()) >= 0 and float(attention.max()) <= 1
    assert checkpoint.view("losses").layout.shapes[-1].x0 == middle  # the checkpoint is marked
    with pytest.raises(MechgrokError, match="unknown view 'nope'"):
        checkpoint.view("nope")
    with pytest.raises(MechgrokError, match="was not analysed"):
        open_views(run).at(middle + 1)
    picked = int(open_views(run).arrays["picked"][0])
    assert checkpoint.view("neuron").layout.annotations[0].text.startswith(f"neuron {picked}:")
    with pytest.raises(MechgrokError, match="needs a Jupyter kernel"):  # notebook 03 runs it in one
        widget(run, ["losses", "attention"])


def test_views_import_from_the_package_and_take_the_nearest_step(analysed_every_2):
    from mechgrok import MechgrokError, load_run
    from mechgrok import views as top

    opened = top.open(load_run(analysed_every_2))
    steps = opened.steps
    assert opened.at(steps[1] + 1, nearest=True).step == steps[1]
    assert opened.at(10**9, nearest=True).step == steps[-1]
    with pytest.raises(MechgrokError, match="was not analysed"):
        opened.at(steps[1] + 1)
    assert callable(top.widget)


def test_the_instruments_draw_the_stored_numbers_at_the_step(analysed_every_2):
    from mechgrok import load_run
    from mechgrok.analysis.views import open as open_views

    opened = open_views(load_run(analysed_every_2))
    arrays, key, steps = opened.arrays, opened.report.circuit.frequencies, opened.steps
    middle = steps[len(steps) // 2]
    at = opened.at(middle)
    pca = at.view("weight_pca")
    assert pca.data[1].x[0] == pytest.approx(float(arrays["weight_pca"][steps.index(middle), 0]))
    assert float(arrays["weight_pca_explained"].sum()) <= 1 + 1e-6 and float(arrays["weight_pca_explained"][0]) > 0.3
    clock = at.view("clock")
    assert len(clock.data) == len(key) and len(clock.data[0].x) == 23
    dims = at.view("dimensionality")
    assert list(dims.data[0].x) == steps and min(dims.data[0].y) >= 1  # a participation ratio is at least 1
    heads = at.view("attention_spectrum")
    assert len(heads.data) == 2 and len(heads.data[0].z) == opened.run.config.model.n_heads
    dynamics = opened.dynamics
    final_clustered = int((arrays["neuron_frac"][-1].float() > opened.report.circuit.threshold).sum())
    assert sum(c is not None for c in dynamics.commit) == final_clustered
    assert all(c is None or c in steps for c in dynamics.commit)
    spans = opened.spans
    assert {s.unit for s in spans if not s.transient} >= set(key)  # every key cluster is standing at the end
    assert at.view("transients").layout.xaxis.range[1] == steps[-1]


def test_every_neurons_stored_spectrum_is_the_transform_of_its_activations(analysed_every_2):
    """neuron_spectra (every neuron, key terms) agree with B X B^T of the stored activations of the picked ones."""
    import torch

    from mechgrok import load_run
    from mechgrok.analysis import trajectory
    from mechgrok.analysis.views import open as open_views

    opened = open_views(load_run(analysed_every_2))
    arrays, lens = opened.arrays, opened.lens
    rows = trajectory.spectrum_rows(lens, opened.report.circuit.frequencies)
    assert rows and rows[0] == 0 and arrays["neuron_spectra"].shape[2:] == (len(rows), len(rows))
    for m in (0, len(arrays["map_steps"]) - 1):
        for i, neuron in enumerate(arrays["picked"].tolist()):
            expected = lens.group.transform_2d(arrays["maps"][m, i].double())[rows][:, rows]
            stored = arrays["neuron_spectra"][m, neuron].double()
            torch.testing.assert_close(stored, expected, rtol=2e-3, atol=2e-3 * float(expected.abs().max()))
