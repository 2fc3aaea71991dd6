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
    box = widget(run, ["losses", "attention"])
    assert box.children[0].value == steps[-1] and len(box.children[0].options) == len(steps)


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
