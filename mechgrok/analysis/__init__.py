"""Progress measures of Nanda et al. (2023) for every group: circuit measures, phases, report, figures.

Importing this package does not import TransformerLens; ``analyze_run`` does, when it builds a model.
"""

from .measures import gini, neuron_clusters
from .phases import find_phases
from .pipeline import analyze_run, load_report
from .report import Report, read_report
from .results import Ablation, CheckpointMeasures, Circuit, Cluster, Phases, Spectra

__all__ = ["Ablation", "CheckpointMeasures", "Circuit", "Cluster", "Phases", "Report", "Spectra", "analyze_run",
           "find_phases", "gini", "load_report", "neuron_clusters", "read_report"]
