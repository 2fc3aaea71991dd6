import itertools
import math

import pytest
import torch

from mechgrok.errors import MechgrokError
from mechgrok.tasks import TASKS, all_pairs, make_dataset, permutations, split_indices

BRUTE = {
    "add": lambda a, b, p: (a + b) % p,
    "sub": lambda a, b, p: (a - b) % p,
    "div": lambda a, b, p: next(c for c in range(p) if (c * b) % p == a),
    "mul": lambda a, b, p: (a * b) % p,
    "x2xyy2": lambda a, b, p: (a * a + a * b + b * b) % p,
    "x3xy2y": lambda a, b, p: (a**3 + a * b * b + b) % p,
}


@pytest.mark.parametrize("task", sorted(BRUTE))
@pytest.mark.parametrize("p", [7, 11])
def test_zp_labels_match_brute_force(task, p):
    inputs, labels, n, _ = all_pairs(task, p)
    expected = [(a, b, BRUTE[task](a, b, p)) for a in range(p) for b in range(p) if task not in ("div", "mul") or b]
    assert n == p
    assert [(a, b, c) for (a, b, _), c in zip(inputs.tolist(), labels.tolist())] == expected
    assert (inputs[:, 2] == p).all()


@pytest.mark.parametrize("k", [3, 4])
def test_perm_is_composition_in_lexicographic_numbering(k):
    inputs, labels, n, _ = all_pairs("perm", k)
    perms = list(itertools.permutations(range(k)))
    assert n == math.factorial(k) == len(perms)
    for (a, b, eq), c in zip(inputs.tolist(), labels.tolist()):
        assert eq == n
        assert perms[c] == tuple(perms[a][perms[b][i]] for i in range(k))
    assert permutations(k).tolist() == [list(q) for q in perms]


def test_rand_table_is_fixed_by_seed_and_unstructured():
    first = all_pairs("rand", 31, seed=1)[1]
    again = all_pairs("rand", 31, seed=1)[1]
    other = all_pairs("rand", 31, seed=2)[1]
    add = all_pairs("add", 31)[1]
    assert torch.equal(first, again)
    assert (first != other).float().mean() > 0.9
    assert (first == add).float().mean() < 0.1  # chance is 1/31


def test_split_is_deterministic_disjoint_and_complete():
    one = make_dataset("add", 23, 0.3, seed=5)
    two = make_dataset("add", 23, 0.3, seed=5)
    three = make_dataset("add", 23, 0.3, seed=6)
    assert torch.equal(one.train_idx, two.train_idx) and torch.equal(one.test_idx, two.test_idx)
    assert not torch.equal(one.train_idx, three.train_idx)
    assert len(one.train_idx) == int(0.3 * 23 * 23)
    assert sorted(torch.cat([one.train_idx, one.test_idx]).tolist()) == list(range(23 * 23))


def test_split_does_not_depend_on_global_rng():
    torch.manual_seed(0)
    first = split_indices(100, 0.3, seed=1)
    torch.manual_seed(123)
    second = split_indices(100, 0.3, seed=1)
    assert torch.equal(first[0], second[0])


@pytest.mark.parametrize("task,p,message", [
    ("div", 21, "needs a prime"),
    ("add", 2, "at least 3"),
    ("mod", 23, "unknown task"),
    ("perm", 7, "degree k"),
])
def test_bad_task_or_p(task, p, message):
    with pytest.raises(MechgrokError, match=message):
        make_dataset(task, p, 0.3, 0)


@pytest.mark.parametrize("frac", [0.0, 1.0, -0.1, 1.5])
def test_frac_outside_open_interval(frac):
    from mechgrok import TrainConfig

    with pytest.raises(MechgrokError, match="strictly between 0 and 1"):
        TrainConfig(p=23, frac_train=frac)


def test_every_task_builds():
    for task in TASKS:
        data = make_dataset(task, 3 if task == "perm" else 7, 0.5, 0)
        columns = data.labels.reshape(len(data.labels), -1)
        assert all(columns[:, i].max() < q for i, q in enumerate(data.heads))
        assert data.d_vocab == data.n_tokens + 1 and data.n_classes == sum(data.heads)


@pytest.mark.parametrize("task,p", [("add", 11), ("sub", 11), ("div", 11), ("x3xy2y", 7), ("perm", 4)])
def test_augmentation_keeps_every_label_correct(task, p):
    from mechgrok.tasks import augment

    data = make_dataset(task, p, 0.5, 0)
    x, y = data.train()
    new_x, new_y = augment(x, y, data.label_table(), TASKS[task].negation(p), 0.5, 0.5,
                           torch.Generator().manual_seed(1))
    perms = [tuple(q) for q in permutations(p).tolist()] if task == "perm" else None
    for (a, b, eq), c in zip(new_x.tolist(), new_y.tolist()):
        assert eq == data.n_classes
        if task == "perm":
            assert perms[c] == tuple(perms[a][perms[b][i]] for i in range(p))
        else:
            assert c == BRUTE[task](a, b, p)
    changed = (new_x[:, :2] != x[:, :2]).any(1).float().mean()
    assert 0.4 < changed < 0.95  # most examples moved, some did not


def test_train_only_augmentation_never_produces_a_held_out_pair():
    from mechgrok.tasks import augment

    data = make_dataset("sub", 23, 0.5, 0)
    x, y = data.train()
    held_out = {tuple(pair) for pair in data.test()[0][:, :2].tolist()}

    def augmented_pairs(train_only):
        new_x, _ = augment(x, y, data.label_table(train_only), TASKS["sub"].negation(23), 0.5, 0.5,
                           torch.Generator().manual_seed(1))
        return [tuple(pair) for pair in new_x[:, :2].tolist()]

    leaked = sum(pair in held_out for pair in augmented_pairs(train_only=False))
    assert leaked > 0.2 * len(x)  # the paper's setting: many augmented pairs are validation pairs
    pairs = augmented_pairs(train_only=True)
    assert not any(pair in held_out for pair in pairs)
    assert sum(new != old for new, old in zip(pairs, (tuple(p) for p in x[:, :2].tolist()))) > 0.2 * len(x)


def test_negation_is_an_involution_and_perm_negation_is_the_inverse():
    for task, p in (("add", 13), ("perm", 4)):
        neg = TASKS[task].negation(p)
        assert torch.equal(neg[neg], torch.arange(len(neg)))
    _, labels, n, _ = all_pairs("perm", 4)
    identity = 0  # (0, 1, 2, 3) is first in lexicographic order
    neg = TASKS["perm"].negation(4)
    assert all(labels[a * n + neg[a]] == identity for a in range(n))


def test_registry_owns_sizes_checks_and_unknown_names():
    from mechgrok.errors import MechgrokError
    from mechgrok.tasks import check_task, get_task

    assert get_task("div").n_examples(7) == 42 and get_task("perm").sizes(4) == (24, (24,))
    assert get_task("miiii").sizes(11) == (11, (2, 3, 5, 7)) and get_task("add").n_examples(5) == 25
    for name, p in (("div", 12), ("perm", 7), ("add", 2), ("miiii", 5000)):
        with pytest.raises(MechgrokError):
            check_task(name, p)
    with pytest.raises(MechgrokError, match="unknown task 'nope'"):
        get_task("nope")
    for name, task in TASKS.items():  # every task counts its pairs as it builds them
        p = 4 if name == "perm" else 7
        assert task.n_examples(p) == len(all_pairs(name, p)[0])
