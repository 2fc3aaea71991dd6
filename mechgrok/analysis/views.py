"""The explorer's views in Python: ``views.open(run).at(step).view(name)`` returns a plotly Figure.

    from mechgrok.analysis import views
    run = load_run("checkpoints/add_p113_seed0")
    views.open(run).at(6400).view("embedding_spectrum").show()
    views.widget(run, ["losses", "embedding_spectrum", "attention"])   # one slider moving several views

They read what ``mechgrok analyze`` stored (report, measures, explorer.safetensors), like the
HTML explorer, and draw with the pure functions of ``figures.py``. ``VIEWS`` lists the names.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Callable

import plotly.graph_objects as go
import torch

from ..errors import MechgrokError
from ..lens import Lens
from ..run import EXPLORER_ARRAYS_FILE, Run
from . import figures, instruments, trajectory
from .pipeline import load_report
from .report import Report

CURVE_VIEWS = ("losses", "restricted_excluded", "weight_norm")
# (title, x axis, y axis) of the per-checkpoint views, one source for Python and the HTML page (which fills in the
# same fields: step, unit, min_neurons)
TITLES = {
    "embedding_spectrum": ("Embedding spectrum at step {step} (key {unit} in red)", "{unit}",
                           "norm of W_E's rows in each {unit}"),
    "neurons": ("Every neuron's dominant {unit} and the share of its variance it explains, step {step}",
                "dominant {unit}", "fraction of variance"),
    "cluster_sizes": ("Cluster sizes at step {step} (dotted: the key minimum, {min_neurons}; other: the rest together)",
                      "{unit}", "neurons"),
    "neuron_logit": ("Neuron-to-logit map W_out W_U by output {unit}, step {step}", "output {unit}", "norm"),
    "attention": ("Attention of '=' to a, per head (layer 0), step {step}", "", ""),
}
CHECKPOINT_VIEWS = ("embedding_spectrum", "neurons", "cluster_sizes", "neuron_logit", "attention", "neuron")
# the instruments (``instruments.py``) beyond the paper's measures, on the slider too
INSTRUMENT_VIEWS = ("weight_pca", "dimensionality", "attention_spectrum", "clock", "neuron_dynamics", "transients")
VIEWS = CURVE_VIEWS + CHECKPOINT_VIEWS + INSTRUMENT_VIEWS


class RunViews:
    """A run's analysis and explorer arrays, read once; ``at(step)`` gives one checkpoint's views."""

    def __init__(self, run: Run, report: Report | None = None, arrays: dict[str, torch.Tensor] | None = None):
        """``report`` and ``arrays``: the run's analysis when the caller has read it already (else read here)."""
        self.run = run
        self.report = report if report is not None else load_report(run.path)
        if arrays is not None:
            self.arrays = arrays  # takes the cached property's place

    @cached_property
    def arrays(self) -> dict[str, torch.Tensor] | None:
        path = self.run.analysis_dir / EXPLORER_ARRAYS_FILE
        return trajectory.load_arrays(path, self.run)[0] if self.report.circuit is not None and path.is_file() else None

    @cached_property
    def lens(self) -> Lens:
        """How the arrays read: the task's lens (its group, its grid's tokens and axes)."""
        return self.run.dataset.lens

    @cached_property
    def dynamics(self) -> instruments.NeuronDynamics:
        """Per neuron, its commit step and switches (``instruments.neuron_dynamics``) over the analysed steps."""
        a = self.arrays
        return instruments.neuron_dynamics(a["neuron_freq"], a["neuron_frac"], self.report.circuit.threshold,
                                           self.steps)

    @cached_property
    def spans(self) -> list[instruments.ClusterSpan]:
        """Every cluster's span over training (``instruments.transient_clusters``)."""
        a, c = self.arrays, self.report.circuit
        return instruments.transient_clusters(a["neuron_freq"], a["neuron_frac"], c.threshold, c.min_neurons,
                                              self.steps, self.lens.group.n_irreps)

    @cached_property
    def sizes(self) -> torch.Tensor:
        """[C, n_irreps] neurons clustered on each unit at each analysed checkpoint."""
        a = self.arrays
        return instruments.cluster_sizes(a["neuron_freq"], a["neuron_frac"], self.report.circuit.threshold,
                                         self.lens.group.n_irreps)

    def cluster_bars(self, index: int) -> tuple[list[str], list[int], list[bool], float]:
        """The cluster-size panel at checkpoint ``index``: names, counts, key flags (the units of
        ``instruments.cluster_units``, then "other") and the value axis's top (1.15 x the largest bar of the run)."""
        names, table, is_key, top = self.cluster_table
        return names, table[index].tolist(), is_key, top

    @cached_property
    def cluster_table(self) -> tuple[list[str], torch.Tensor, list[bool], float]:
        """The cluster-size panel of every checkpoint: names, counts [C, len(names)], key flags, the axis's top."""
        c = self.report.circuit
        units = instruments.cluster_units(self.sizes, c.min_neurons, c.frequencies)
        rest = torch.ones(self.sizes.shape[1], dtype=torch.bool)
        rest[[0, *units]] = False
        table = torch.cat([self.sizes[:, units], self.sizes[:, rest].sum(1, keepdim=True)], 1)
        top = 1.15 * max(int(table.max()) if table.numel() else 0, c.min_neurons)
        names = [self.lens.unit_names[u] for u in units] + ["other"]
        return names, table, [u in c.frequencies for u in units] + [False], top

    @property
    def steps(self) -> list[int]:
        return self.arrays["steps"].tolist() if self.arrays is not None else [m.step for m in self.report.measures]

    def at(self, step: int, nearest: bool = False) -> "CheckpointViews":
        """One analysed checkpoint's views; ``nearest``: the analysed step closest to ``step`` (the earlier on a
        tie) instead of an error when ``step`` was not analysed."""
        if nearest and self.steps:
            step = min(self.steps, key=lambda s: (abs(s - step), s))
        if step not in self.steps:
            raise MechgrokError(f"step {step} was not analysed; analysed steps run {self.steps[0]}..{self.steps[-1]} "
                                f"({len(self.steps)} of them, e.g. {self.steps[: 5]})")
        return CheckpointViews(self, step)


class CheckpointViews:
    """One analysed checkpoint; ``view(name)`` draws one of VIEWS there."""

    def __init__(self, views: RunViews, step: int):
        self.views, self.step = views, step
        self.index = views.steps.index(step)

    def view(self, name: str, **options: Any) -> go.Figure:
        """Figure ``name`` (one of VIEWS) at this checkpoint; ``neuron`` takes ``neuron=`` (one of the picked)."""
        draw: dict[str, Callable[..., go.Figure]] = {
            "losses": self._losses, "restricted_excluded": self._restricted_excluded, "weight_norm": self._norm,
            "embedding_spectrum": self._spectrum, "neurons": self._neurons, "cluster_sizes": self._clusters,
            "neuron_logit": self._logit, "attention": self._attention, "neuron": self._neuron,
            "weight_pca": self._pca, "dimensionality": self._dimension, "attention_spectrum": self._attention_spectrum,
            "clock": self._clock, "neuron_dynamics": self._dynamics, "transients": self._transients}
        if name not in draw:
            raise MechgrokError(f"unknown view {name!r}; views: {', '.join(VIEWS)}")
        if name not in CURVE_VIEWS and self.views.arrays is None:
            raise MechgrokError(f"view {name!r} needs the circuit arrays, which task {self.views.report.config['task']} "
                                "runs do not have (no group and not the Z_p grid)")
        return draw[name](**options)

    # -- curves, with the checkpoint marked ---------------------------------------------------
    def _marked(self, fig: go.Figure) -> go.Figure:
        return fig.add_vline(x=self.step, line_dash="dot", line_color="black")

    def _losses(self) -> go.Figure:
        r = self.views.report
        return self._marked(figures.loss_figure(r.measures, r.phases, r.grok_step))

    def _restricted_excluded(self) -> go.Figure:
        r = self.views.report
        return self._marked(figures.restricted_excluded_figure(r.measures, r.phases))

    def _norm(self) -> go.Figure:
        r = self.views.report
        return self._marked(figures.gini_norm_figure(r.measures, r.phases))

    # -- one checkpoint -----------------------------------------------------------------------
    @property
    def _key(self) -> list[int]:
        return self.views.report.circuit.frequencies

    def _row(self, name: str) -> torch.Tensor:
        return self.views.arrays[name][self.index].float()

    def _titled(self, name: str, fig: go.Figure) -> go.Figure:
        """``fig`` with view ``name``'s title and axis names from TITLES, filled in for this checkpoint."""
        fields = dict(step=self.step, unit=self.views.lens.unit, min_neurons=self.views.report.circuit.min_neurons)
        title, x, y = (text.format(**fields) for text in TITLES[name])
        fig.update_layout(title=title)
        return fig.update_layout(xaxis_title=x, yaxis_title=y) if x else fig

    def _spectrum(self) -> go.Figure:
        row = self.views.report.spectra.at(self.step)
        lens = self.views.lens
        return self._titled("embedding_spectrum", figures.frequency_bars(
            list(range(1, len(row))), row[1:], self._key, "", "", lens.unit_names, lens.unit))

    def _logit(self) -> go.Figure:
        row = self._row("logit_spectrum")
        lens = self.views.lens
        return self._titled("neuron_logit", figures.frequency_bars(
            list(range(1, len(row))), row[1:].tolist(), self._key, "", "", lens.unit_names, lens.unit))

    def _neurons(self) -> go.Figure:
        freq, frac = self._row("neuron_freq").long(), self._row("neuron_frac")
        units = self.views.lens.unit_names
        fig = go.Figure(go.Scatter(x=[units[int(f)] for f in freq], y=frac.tolist(), mode="markers",
                                   marker=dict(color=["crimson" if int(f) in self._key else "grey" for f in freq])))
        fig.add_hline(y=self.views.report.circuit.threshold, line_dash="dot")
        return self._titled("neurons", fig.update_layout(yaxis_range=[0, 1.02]))

    def _clusters(self) -> go.Figure:
        names, counts, is_key, top = self.views.cluster_bars(self.index)
        return self._titled("cluster_sizes", figures.cluster_bars_figure(
            names, counts, is_key, self.views.report.circuit.min_neurons, top))

    def _attention(self) -> go.Figure:
        scores = self._row("attention_scores")  # [heads, 3, d_vocab]
        tokens = self.views.lens.tokens  # grid element -> input token
        s_a, s_b, s_eq = scores[:, 0, tokens], scores[:, 1, tokens], scores[:, 2, -1]
        stacked = torch.stack(torch.broadcast_tensors(s_a[:, :, None], s_b[:, None, :], s_eq[:, None, None]), -1)
        pattern = stacked.softmax(-1)[..., 0].permute(1, 2, 0)  # [a, b, head]
        return self._titled("attention", figures.attention_figure(pattern, self.views.lens.axis))

    def _neuron(self, neuron: int | None = None) -> go.Figure:
        """A neuron's 2D spectrum (key terms) at the nearest stored checkpoint: from its activations for the picked
        neurons, from the stored coefficients (``trajectory.spectrum_rows``) for every other neuron."""
        arrays = self.views.arrays
        picked = arrays["picked"].tolist()
        neuron = picked[0] if neuron is None else neuron
        map_steps = arrays["map_steps"].tolist()
        if not map_steps:
            raise MechgrokError("this analysis stored no neuron activation maps; run `mechgrok analyze --force`")
        nearest = min(range(len(map_steps)), key=lambda i: abs(map_steps[i] - self.step))
        where = f"step {map_steps[nearest]}" + ("" if map_steps[nearest] == self.step else " (nearest stored)")
        lens = self.views.lens
        title = f"Neuron {neuron} in the 2D {'Fourier' if lens.unit == 'frequency' else 'irreps'} basis, {where}"
        if neuron in picked:
            activations = arrays["maps"][nearest, picked.index(neuron)].float()[..., None]  # [p, p, 1]
            fig = figures.neuron_spectra_figure(activations, [0], [where], self._key or None, lens.group)
        else:
            rows = trajectory.spectrum_rows(lens, self._key)
            spectra = arrays["neuron_spectra"]
            if not 0 <= neuron < spectra.shape[1] or not rows or spectra.shape[2] != len(rows):
                raise MechgrokError(f"neuron {neuron}'s spectrum is not stored; stored for every neuron of the "
                                    f"layer when the key terms are few, and activations for {picked}")
            coefficients = spectra[nearest, neuron].float()[..., None]  # [r, r, 1]
            fig = figures.coefficients_figure(coefficients, [lens.group.basis_names[i] for i in rows], [where],
                                              lens.unit == "frequency")
        fig.layout.annotations[0].text = f"neuron {neuron}: {where}"  # the figure numbers its one neuron 0
        return fig.update_layout(title=title)

    # -- instruments ---------------------------------------------------------------------------
    def _pca(self) -> go.Figure:
        a = self.views.arrays
        return figures.weight_pca_figure(a["weight_pca"], a["weight_pca_explained"], self.views.steps, self.step)

    def _dimension(self) -> go.Figure:
        fig = figures.dimensionality_figure(self.views.arrays["dimension"], self.views.steps, self.views.report.phases)
        return self._marked(fig)

    def _attention_spectrum(self) -> go.Figure:
        return figures.attention_spectrum_figure(self._row("attention_spectrum"), self.views.lens.unit_names,
                                                 self._key, self.step)

    def _clock(self) -> go.Figure:
        points = self.views.arrays["clock"]
        if points.shape[1] != len(self._key):
            raise MechgrokError(f"the stored clock has {points.shape[1]} planes for {len(self._key)} key units; "
                                "run `mechgrok analyze --force`")
        fig = figures.clock_figure(points[self.index].float(), self.views.lens.unit_names, self._key, self.step)
        top = 1.1 * float(points.float().norm(dim=-1).max()) if points.numel() else 1.0  # one range for every step
        return fig.update_xaxes(range=[-top, top]).update_yaxes(range=[-top, top])

    def _dynamics(self) -> go.Figure:
        d = self.views.dynamics
        return figures.neuron_dynamics_figure(d.commit, d.switches, self.views.steps, self.step)

    def _transients(self) -> go.Figure:
        return figures.transients_figure(self.views.spans, self.views.lens.unit_names, self._key, self.step,
                                         self.views.steps[-1])


def run_row(views: RunViews) -> dict[str, str]:
    """One run at its last analysed checkpoint, as the explorer's run table shows it: grok step, key units, whether
    a circuit is claimed (a run that has not generalised has candidates, never key units), final restricted and
    excluded loss and test accuracy."""
    report, last = views.report, views.report.measures[-1]
    circuit = report.circuit
    claimed = "no basis" if circuit is None else ("yes" if circuit.claimed else
                                                 "no (candidates only: not generalised)")
    units = "-" if circuit is None else (", ".join(circuit.name(k) for k in circuit.frequencies) or "-")
    number = (lambda v: "-" if v is None else f"{v:.3g}")
    return {"run": views.run.path.name, "grok step": "never" if report.grok_step is None else str(report.grok_step),
            ("key units" if circuit is None or circuit.claimed else "candidate units"): units, "claimed": claimed,
            "final restricted loss": number(last.restricted_loss), "final excluded loss": number(last.excluded_loss),
            "final test accuracy": number(last.test_acc)}


def run_table(runs: list[Run]) -> list[dict[str, str]]:
    """``run_row`` of each run (the explorer's Runs tab)."""
    return [run_row(RunViews(run)) for run in runs]


def compare(runs: list[Run], step: int) -> go.Figure:
    """Every run's embedding spectrum at its analysed checkpoint nearest ``step``, side by side (the Runs tab)."""
    fig = go.Figure()
    for run in runs:
        opened = RunViews(run)
        at = opened.at(step, nearest=True)
        row = opened.report.spectra.at(at.step)
        fig.add_bar(x=opened.lens.unit_names[1:], y=row[1:], name=f"{run.path.name} (step {at.step})")
    return fig.update_layout(title=f"Embedding spectra of every run at step {step}", barmode="group",
                             xaxis=dict(type="category"), yaxis_title="norm of W_E's rows")


def open(run: Run) -> RunViews:  # noqa: A001 (views.open(run), as files open)
    """A run's views: ``views.open(run).at(step).view(name)``."""
    return RunViews(run)


def widget(run: Run, names: list[str] | tuple[str, ...] = ("losses", "embedding_spectrum", "cluster_sizes")):
    """One slider over the analysed checkpoints redrawing ``names`` together (ipywidgets, in a Jupyter kernel: outside
    one a widget cannot draw, and ``display`` would print each figure's repr)."""
    try:
        from IPython import get_ipython
    except ImportError:
        get_ipython = None
    if get_ipython is None or not hasattr(get_ipython(), "kernel"):
        raise MechgrokError("views.widget needs a Jupyter kernel; outside one draw a view with "
                            "views.open(run).at(step).view(name).show()")
    import ipywidgets
    from IPython.display import display

    views = RunViews(run)
    unknown = sorted(set(names) - set(VIEWS))
    if unknown:
        raise MechgrokError(f"unknown view(s) {', '.join(unknown)}; views: {', '.join(VIEWS)}")
    slider = ipywidgets.SelectionSlider(options=views.steps, value=views.steps[-1], description="step",
                                        continuous_update=False, layout=ipywidgets.Layout(width="90%"))
    output = ipywidgets.Output()

    def redraw(change=None) -> None:
        output.clear_output(wait=True)
        with output:
            checkpoint = views.at(slider.value)
            for name in names:
                display(checkpoint.view(name))

    slider.observe(redraw, names="value")
    redraw()
    return ipywidgets.VBox([slider, output])
