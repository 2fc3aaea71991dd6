"""mechgrok: train small transformers on group operations and find the circuit they grok."""

from .config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
from .errors import MechgrokError
from .run import Run, load_run
from .tasks import make_dataset
from .train import train

__version__ = "0.2.0"
__all__ = ["DataConfig", "MechgrokError", "ModelConfig", "OptimConfig", "Run", "RunConfig", "TrainConfig",
           "load_run", "make_dataset", "train"]
