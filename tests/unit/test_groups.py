"""Groups and their irreps, checked against the identities that define them."""

import math

import pytest
import torch

from mechgrok.groups import CyclicGroup, MultiplicativeGroup, SymmetricGroup, fourier_basis, is_prime
from mechgrok.tasks import all_pairs

GROUPS = [CyclicGroup(7), CyclicGroup(8), MultiplicativeGroup(11), SymmetricGroup(3), SymmetricGroup(4),
          SymmetricGroup(5)]


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_irreps_are_orthogonal_homomorphisms(group):
    table = group.table
    for irrep in group.irreps:
        rho = irrep.matrices
        eye = torch.eye(irrep.dim, dtype=torch.float64).expand_as(rho)
        torch.testing.assert_close(rho @ rho.transpose(-1, -2), eye)  # orthogonal
        products = rho[:, None] @ rho[None, :]  # rho(a) rho(b) for every pair
        torch.testing.assert_close(products, rho[table], atol=1e-9, rtol=0)  # rho(ab) = rho(a) rho(b)


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_characters_are_orthonormal_and_dimensions_add_up(group):
    chars = torch.stack([irrep.character for irrep in group.irreps])
    gram = chars @ chars.T / group.order
    real_types = torch.tensor([1.0 if irrep.basis_rows == irrep.dim**2 else 2.0 for irrep in group.irreps])
    # absolutely irreducible: <chi, chi> = 1; a 2D rotation of Z_n (complex type over the reals): 2
    torch.testing.assert_close(gram, torch.diag(real_types).double())
    assert sum(irrep.basis_rows for irrep in group.irreps) == group.order  # sum of d^2 (S_k) = |G|
    basis = group.basis
    torch.testing.assert_close(basis @ basis.T, torch.eye(group.order, dtype=torch.float64))


def test_symmetric_group_matches_the_perm_task_and_has_the_known_irreps():
    s4 = SymmetricGroup(4)
    inputs, labels, n, _ = all_pairs("perm", 4)
    assert torch.equal(s4.table.reshape(-1), labels) and n == 24
    assert [irrep.dim for irrep in s4.irreps] == [1, 3, 2, 3, 1]  # (4), (3,1), (2,2), (2,1,1), (1,1,1,1)
    sign = s4.irreps[-1].character
    assert set(sign.tolist()) == {-1.0, 1.0} and sign.sum() == 0


def test_discrete_logs_turn_multiplication_into_addition():
    group = MultiplicativeGroup(23)
    a, b = torch.arange(1, 23)[:, None], torch.arange(1, 23)[None, :]
    product = (a * b) % 23
    assert torch.equal(group.log[product], (group.log[a] + group.log[b]) % 22)
    assert torch.equal(group.exp[group.log[1:]], torch.arange(1, 23)) and group.generator == 5


def test_irrep_fractions_recover_a_function_built_from_chosen_irreps():
    s5 = SymmetricGroup(5)
    g = torch.Generator().manual_seed(0)
    chosen = [1, 4]  # two irreps of S_5
    f = sum(s5.irreps[i].matrices.reshape(s5.order, -1) @ torch.randn(s5.irreps[i].dim ** 2, 3, generator=g,
                                                                        dtype=torch.float64) for i in chosen)
    fractions = s5.irrep_fractions(f)
    assert fractions[chosen].sum(0).min() > 1 - 1e-9
    z23 = CyclicGroup(23)
    x = torch.arange(23, dtype=torch.float64)
    wave = torch.cos(2 * math.pi * 5 * x / 23 + 0.3)
    assert z23.irrep_fractions(wave)[5].item() == pytest.approx(1.0)


def test_is_prime():
    assert [n for n in range(20) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19]


@pytest.mark.parametrize("p", [23, 31, 12])
def test_fourier_basis_is_orthonormal_and_ordered_const_cos_sin(p):
    basis, names, freqs = fourier_basis(p)
    torch.testing.assert_close(basis @ basis.T, torch.eye(p, dtype=torch.float64))
    assert names[:3] == ("const", "cos 1", "sin 1") and freqs[1] == freqs[2] == 1
    x = torch.arange(p, dtype=torch.float64)
    torch.testing.assert_close(basis[3], torch.cos(2 * math.pi * 2 * x / p) / math.sqrt(p / 2))
    assert freqs.max() == p // 2
    assert torch.equal(CyclicGroup(p).basis, basis) and torch.equal(CyclicGroup(p).owner, freqs)


def test_spectrum_of_a_pure_frequency():
    p, k = 31, 6
    x = torch.arange(p, dtype=torch.float64)
    rows = torch.zeros(p, 8, dtype=torch.float64)
    rows[:, 0], rows[:, 1] = torch.cos(2 * math.pi * k * x / p), torch.sin(2 * math.pi * k * x / p)
    spectrum = CyclicGroup(p).spectrum(rows)
    assert spectrum.argmax() == k and len(spectrum) == p // 2 + 1
    assert spectrum[k] == pytest.approx(math.sqrt(p)) and spectrum.pow(2).sum() == pytest.approx(p)


def test_spectrum_of_rows_from_one_irrep_is_all_there():
    s4 = SymmetricGroup(4)
    rows = s4.irreps[2].matrices.reshape(24, -1) @ torch.randn(4, 16, generator=torch.Generator().manual_seed(3),
                                                                dtype=torch.float64)
    spectrum = s4.spectrum(rows)
    assert spectrum[2] == pytest.approx(rows.norm().item())
    assert spectrum.pow(2).sum() == pytest.approx(rows.pow(2).sum().item())


@pytest.mark.parametrize("group", [CyclicGroup(23), SymmetricGroup(4)], ids=lambda g: g.name)
def test_2d_transform_round_trips_and_masks_are_complementary(group):
    n = group.order
    grid = torch.randn(n, n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(group.inverse_2d(group.transform_2d(grid)), grid)
    mean = grid.mean((0, 1), keepdim=True)
    kept, removed = group.mask_2d(grid, [1, 2], keep=True), group.mask_2d(grid, [1, 2], keep=False)
    torch.testing.assert_close(kept + removed - mean, grid)
    assert group.term_fractions(removed)[[1, 2]].abs().max() < 1e-10
    matrix = torch.randn(n, 4, dtype=torch.float64)
    torch.testing.assert_close(group.mask_rows(matrix, [1], True) + group.mask_rows(matrix, [1], False)
                               - matrix.mean(0, keepdim=True), matrix)


def test_term_owner_gives_each_irrep_its_linear_and_product_terms_and_cross_terms_to_none():
    owner = CyclicGroup(7).term_owner  # rows: const, cos1, sin1, cos2, sin2, cos3, sin3
    assert owner[0, 0] == 0 and owner[1, 0] == owner[0, 2] == owner[2, 1] == 1 and owner[3, 4] == 2
    assert owner[1, 3] == -1 and owner[5, 2] == -1
    cross = torch.zeros(7, 7, 1, dtype=torch.float64)
    cross[1, 3] = 1.0  # cos(w1 a) cos(w2 b) alone
    assert CyclicGroup(7).term_fractions(CyclicGroup(7).inverse_2d(cross)).sum() < 1e-6  # no irrep owns it


def test_term_fractions_find_a_single_frequency_and_not_noise():
    p, k = 23, 4
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    w = 2 * math.pi * k / p
    one_freq = torch.cos(w * (a + b)) + 0.5 * torch.sin(w * a) + 3.0  # products and a linear term
    noise = torch.randn(p, p, generator=torch.Generator().manual_seed(0))
    fractions = CyclicGroup(p).term_fractions(torch.stack([one_freq, noise], -1).double())
    assert fractions[:, 0].argmax() == k and fractions[k, 0] == pytest.approx(1.0)
    assert fractions[:, 1].max() < 0.5  # a noise neuron spreads its variance
    # together the frequencies own 8 of the p^2 - 1 dimensions each (4 linear, 4 products), so white noise puts
    # about 8K / (p^2 - 1) of its variance in them (not in the k x k' cross terms)
    assert fractions[:, 1].sum() == pytest.approx(8 * (p // 2) / (p * p - 1), abs=0.06)


def test_product_directions_are_orthonormal_over_the_grid():
    for group in (CyclicGroup(11), SymmetricGroup(4)):
        directions = group.product_directions(group.table.reshape(-1), [1, 2])
        torch.testing.assert_close(directions @ directions.T, torch.eye(len(directions), dtype=torch.float64))
