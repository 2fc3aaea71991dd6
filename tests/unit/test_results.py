"""Typed results: each converts to the form report.json and the CSVs hold, and back, unchanged."""

import math

import pytest

from mechgrok import MechgrokError
from mechgrok.analysis.results import (CheckpointMeasures, Circuit, Cluster, LayerCircuit, Phases, Spectra)


def _circuit(**overrides):
    values = dict(from_step=100, frequencies=[3, 8], clusters=[Cluster(3, 10, 0.9), Cluster(8, 12, 0.95)],
                  cluster_sizes_all={3: 10, 8: 12, 5: 1}, fraction_clustered=0.5, threshold=0.5, min_neurons=3,
                  embedding_top=[3, 8], agree_with_embedding=True, control_frequency=5,
                  irrep_names=["trivial"] + [f"k={k}" for k in range(1, 12)], unit="frequency", layer=1,
                  per_layer=[LayerCircuit(0, [], 0.0), LayerCircuit(1, [3, 8], 0.5)])
    return Circuit(**{**values, **overrides})


def test_checkpoint_measures_round_trip_with_per_task_columns_and_missing_measures():
    row = CheckpointMeasures(10, 1.0, 2.0, 0.5, 0.25, 300.0, per_task={"test_acc_q2": 0.5, "fit_r2_q2": 0.1})
    flat = row.to_row()
    assert "restricted_loss" not in flat and flat["test_acc_q2"] == 0.5
    assert CheckpointMeasures.from_row({**flat, "restricted_loss": math.nan}) == row  # a blank CSV cell is None
    with pytest.raises(MechgrokError, match="lacks measures"):
        CheckpointMeasures.from_row({"step": 1})


def test_circuit_round_trips_and_names_its_indices():
    circuit = _circuit()
    again = Circuit.from_dict(circuit.to_dict())
    assert again == circuit and again.per_layer[1] == LayerCircuit(1, [3, 8], 0.5)
    assert circuit.name(8) == "k=8" and circuit.units == "frequencies"
    assert _circuit(irrep_names=["(3)", "(2,1)", "(1,1,1)"], unit="irrep").units == "irreps"


def test_a_version_2_circuit_reads_with_z_p_frequencies_named():
    old = _circuit().to_dict()
    old.pop("unit")
    old["irrep_names"] = []
    old["per_layer"] = [{"layer": 0, "frequencies": [3], "fraction_clustered": 0.4}]
    circuit = Circuit.from_dict(old)
    assert circuit.unit == "frequency" and circuit.name(8) == "k=8" and circuit.per_layer[0].frequencies == [3]


def test_spectra_round_trip_through_the_csv_form():
    spectra = Spectra()
    spectra.append(0, [0.0, 1.0, 2.0])
    spectra.append(50, [0.0, 3.0, 1.0])
    rows = spectra.to_rows()
    assert rows[1] == {"step": 50, "k0": 0.0, "k1": 3.0, "k2": 1.0}
    again = Spectra.from_rows(rows)
    assert again == spectra and again.at(50) == [0.0, 3.0, 1.0] and again.final == [0.0, 3.0, 1.0]
    with pytest.raises(MechgrokError, match="not a spectrum"):
        Spectra.from_rows([{"step": 0, "k0": 1.0, "k2": 1.0}])


def test_phases_say_why_a_boundary_is_missing():
    assert Phases(evidence={"note": "still memorizing"}).note == "still memorizing" and not Phases().placed
    assert Phases.from_dict(Phases(1, 2, 3, {}).to_dict()) == Phases(1, 2, 3, {})
