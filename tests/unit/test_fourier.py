import math

import pytest
import torch

from mechgrok.analysis.fourier import (embedding_spectrum, fourier_2d, fourier_basis, frequency_fractions_2d,
                                       inverse_fourier_2d)
from mechgrok.analysis.measures import gini, mask_frequencies_1d, mask_frequencies_2d


@pytest.mark.parametrize("p", [23, 31, 12])
def test_basis_is_orthonormal_and_ordered_const_cos_sin(p):
    basis, names, freqs = fourier_basis(p)
    torch.testing.assert_close(basis @ basis.T, torch.eye(p, dtype=torch.float64))
    assert names[:3] == ("const", "cos 1", "sin 1") and freqs[1] == freqs[2] == 1
    x = torch.arange(p, dtype=torch.float64)
    torch.testing.assert_close(basis[3], torch.cos(2 * math.pi * 2 * x / p) / math.sqrt(p / 2))
    assert freqs.max() == p // 2


def test_embedding_spectrum_of_a_pure_frequency():
    p, k = 31, 6
    x = torch.arange(p, dtype=torch.float64)
    W_E = torch.zeros(p + 1, 8, dtype=torch.float64)
    W_E[:p, 0] = torch.cos(2 * math.pi * k * x / p)
    W_E[:p, 1] = torch.sin(2 * math.pi * k * x / p)
    W_E[p] = 100.0  # the '=' token is not part of the spectrum
    spectrum = embedding_spectrum(W_E, p)
    assert spectrum.argmax() == k
    assert spectrum[k] == pytest.approx(math.sqrt(p))
    assert spectrum.pow(2).sum() == pytest.approx(p)


def test_2d_transform_round_trips():
    grid = torch.randn(23, 23, 5, dtype=torch.float64)
    torch.testing.assert_close(inverse_fourier_2d(fourier_2d(grid)), grid)


def test_fractions_find_a_single_frequency_and_not_noise():
    p, k = 23, 4
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    w = 2 * math.pi * k / p
    one_freq = torch.cos(w * (a + b)) + 0.5 * torch.sin(w * a) + 3.0  # products and a linear term
    noise = torch.randn(p, p, generator=torch.Generator().manual_seed(0))
    fractions = frequency_fractions_2d(torch.stack([one_freq, noise], -1).double())
    assert fractions[:, 0].argmax() == k and fractions[k, 0] == pytest.approx(1.0)
    # A noise neuron spreads its variance: no frequency holds half of it ...
    assert fractions[:, 1].max() < 0.5
    # ... and together the frequencies own 8 of the p^2 - 1 dimensions each (4 linear, 4 products),
    # so white noise puts about 8K / (p^2 - 1) of its variance in them (not the k x k' cross terms).
    assert fractions[:, 1].sum() == pytest.approx(8 * (p // 2) / (p * p - 1), abs=0.06)


def test_keep_and_remove_are_complementary():
    grid = torch.randn(23, 23, 3, dtype=torch.float64)
    mean = grid.mean((0, 1), keepdim=True)
    kept = mask_frequencies_2d(grid, [2, 5], keep=True)
    removed = mask_frequencies_2d(grid, [2, 5], keep=False)
    torch.testing.assert_close(kept + removed - mean, grid)
    matrix = torch.randn(23, 4, dtype=torch.float64)
    torch.testing.assert_close(mask_frequencies_1d(matrix, [3], True) + mask_frequencies_1d(matrix, [3], False)
                               - matrix.mean(0, keepdim=True), matrix)


def test_gini_known_values():
    assert gini(torch.ones(50)) == pytest.approx(0.0)
    one_hot = torch.zeros(50)
    one_hot[7] = 3.0
    assert gini(one_hot) == pytest.approx(1 - 1 / 50)
    assert gini(torch.tensor([0.0, 0.0, 1.0, 1.0])) == pytest.approx(0.5)
    assert gini(-one_hot) == gini(one_hot)
