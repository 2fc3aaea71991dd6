"""Progress measures of Nanda et al. (2023): Fourier basis, circuit measures, phases, report, figures.

Importing this package does not import TransformerLens; ``analyze_run`` does, when it builds a model.
"""

from .fourier import embedding_spectrum, fourier_2d, fourier_basis, frequency_fractions_2d
from .measures import excluded_logits, gini, neuron_clusters, restricted_logits
from .phases import find_phases
from .report import Report, analyze_run, load_report, read_report
from .results import Ablation, CheckpointMeasures, Circuit, Cluster, Phases

__all__ = ["Ablation", "CheckpointMeasures", "Circuit", "Cluster", "Phases", "Report", "analyze_run",
           "embedding_spectrum", "excluded_logits", "find_phases", "fourier_2d", "fourier_basis",
           "frequency_fractions_2d", "gini", "load_report", "neuron_clusters", "read_report", "restricted_logits"]
