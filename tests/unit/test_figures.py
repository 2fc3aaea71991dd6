"""Pure figure functions: numbers in, the picture those numbers call for out."""

import math

import torch

from mechgrok.analysis import figures
from mechgrok.analysis.results import CheckpointMeasures, Phases, Spectra
from mechgrok.groups import CyclicGroup, SymmetricGroup

from .test_results import _circuit


def _rows():
    return [CheckpointMeasures(s, 1.0 / (s + 1), 2.0, 1.0, 0.5, 100.0 - s, 0.1, 3.0, 0.2, 0.3, 0.5, 2)
            for s in (0, 10, 20, 30)]


def test_loss_figure_shades_the_three_phases_and_marks_the_grok_step():
    fig = figures.loss_figure(_rows(), Phases(10, 20, 30), grok_step=25)
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert [(r.x0, r.x1) for r in rects] == [(0, 10), (10, 20), (20, 30)]
    assert any(s.type == "line" and s.x0 == 25 for s in fig.layout.shapes)
    assert {a.text for a in fig.layout.annotations} >= {"memorization", "circuit formation", "cleanup"}
    assert list(fig.data[0].y) == [1.0, 1 / 11, 1 / 21, 1 / 31]


def test_frequency_bars_colour_the_key_ones_and_name_irreps():
    fig = figures.frequency_bars([1, 2, 3], [0.5, 2.0, 1.0], [2], "t", "norm")
    assert list(fig.data[0].x) == [1, 2, 3] and list(fig.data[0].marker.color) == ["steelblue", "crimson", "steelblue"]
    named = figures.frequency_bars([1, 2], [1.0, 1.0], [1], "t", "norm", ["(3)", "(2,1)", "(1,1,1)"], "irrep")
    assert list(named.data[0].x) == ["(2,1)", "(1,1,1)"] and named.layout.xaxis.type == "category"


def test_spectrum_figure_leaves_the_constant_out_and_follows_the_steps():
    spectra = Spectra([0, 50], [[9.0, 1.0, 2.0], [9.0, 3.0, 0.5]])
    fig = figures.spectrum_figure(spectra, [1])
    assert list(fig.data[0].x) == [1, 2] and list(fig.data[0].y) == [3.0, 0.5] and list(fig.data[1].y) == [0, 50]
    assert list(figures.spectrum_figure(spectra, [1], ["trivial", "k=1", "k=2"]).data[0].x) == ["k=1", "k=2"]
    assert [list(r) for r in fig.data[1].z] == [[1.0, 2.0], [3.0, 0.5]]


def test_clusters_figure_names_its_bars_and_draws_the_key_minimum():
    fig = figures.clusters_figure(_circuit())
    assert list(fig.data[0].x) == ["k=3", "k=5", "k=8"] and list(fig.data[0].y) == [10, 1, 12]
    assert fig.layout.shapes[0].y0 == 3


def test_a_one_frequency_neuron_lights_its_own_terms():
    p, k = 11, 3
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    w = 2 * math.pi * k / p
    neuron = (torch.cos(w * a) * torch.cos(w * b)).double()[..., None]
    fig = figures.neuron_spectra_figure(neuron, [0], ["k=3"], [k])
    z = torch.tensor(fig.data[0].z)
    names = list(fig.data[0].x)
    assert names == ["const", "cos 3", "sin 3"] and z.argmax() == 1 * 3 + 1  # (cos 3, cos 3)
    on_s4 = figures.neuron_spectra_figure(torch.randn(24, 24, 2, dtype=torch.float64), [0, 1], None, [1],
                                          SymmetricGroup(4))
    assert len(on_s4.data) == 2 and "irreps' basis" in on_s4.layout.title.text


def test_attention_figure_has_a_panel_per_head_and_logit_fourier_names_its_basis():
    fig = figures.attention_figure(torch.rand(5, 5, 4), ("log_g a", "log_g b"))
    assert len(fig.data) == 4 and fig.layout.xaxis.title.text == "log_g b"
    logits = torch.randn(49, 7, dtype=torch.float64)
    assert list(figures.logit_fourier_figure(logits).data[0].x) == CyclicGroup(7).basis_names


def test_tick_steps_are_round():
    assert figures._round_step(17) == 5 and figures._round_step(1e5) == 2e4 and figures._round_step(0.3) == 0.1


def test_several_neurons_each_get_their_own_scale_and_no_figure_is_wider_than_a_page():
    p, w = 11, 2 * math.pi / 11
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    big, small = (torch.cos(w * a) * torch.cos(w * b)).double(), 0.01 * (torch.cos(3 * w * a) * torch.cos(3 * w * b))
    fig = figures.neuron_spectra_figure(torch.stack([big, small.double()], -1), [0, 1], None, [1, 3])
    assert [max(map(max, t.z)) for t in fig.data] == [1.0, 1.0]  # the small neuron is not left blank
    assert fig.layout.width <= figures.MAX_WIDTH
    assert figures.attention_figure(torch.rand(5, 5, 8)).layout.width <= figures.MAX_WIDTH
