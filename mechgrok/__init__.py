"""mechgrok: train small transformers on group operations and find the circuit they grok."""

from .config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
from .errors import MechgrokError
from .run import Run, load_run
from .tasks import make_dataset
from .train import train

__version__ = "0.2.0"


def __getattr__(name: str):
    """``from mechgrok import views``: the explorer's views in Python, imported on first use (they need plotly and
    TransformerLens, which ``import mechgrok`` does not load)."""
    if name == "views":
        from .analysis import views

        return views
    raise AttributeError(f"module 'mechgrok' has no attribute {name!r}")
__all__ = ["DataConfig", "MechgrokError", "ModelConfig", "OptimConfig", "Run", "RunConfig", "TrainConfig",
           "load_run", "make_dataset", "train"]
