"""mechgrok: train modular-arithmetic transformers and find the Fourier circuit they grok."""

from .config import TrainConfig
from .errors import MechgrokError
from .run import Run, load_run
from .tasks import make_dataset
from .train import train

__version__ = "0.1.0"
__all__ = ["MechgrokError", "Run", "TrainConfig", "load_run", "make_dataset", "train"]
