"""Groups and their irreps, checked against the identities that define them."""

import math

import pytest
import torch

from mechgrok.groups import CyclicGroup, MultiplicativeGroup, SymmetricGroup, group_of_task
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
    basis, owner = group.fourier_basis
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


def test_group_of_each_task():
    assert group_of_task("add", 23).name == "Z_23" and group_of_task("div", 23).name == "Z_23^*"
    assert group_of_task("perm", 4).order == 24 and group_of_task("x2xyy2", 23) is None
