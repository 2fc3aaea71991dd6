"""Progress measures of Nanda et al. (2023): Fourier basis, circuit measures, phases, report, figures."""

from .fourier import embedding_spectrum, fourier_2d, fourier_basis, frequency_fractions_2d
from .measures import (excluded_logits, gini, neuron_clusters, restricted_logits)
from .phases import find_phases
from .report import Report, analyze_run

__all__ = ["Report", "analyze_run", "embedding_spectrum", "excluded_logits", "find_phases", "fourier_2d",
           "fourier_basis", "frequency_fractions_2d", "gini", "neuron_clusters", "restricted_logits"]
