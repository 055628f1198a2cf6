"""Training: fit a classifier, log it to MLflow as ``ml_<model_type>``, write the fallback pickle.

``hokusai train`` and ``python models/train.py`` are thin shells over :func:`train`.
"""

from hokusai.training.datasets import Dataset, load_dataset
from hokusai.training.train import MODEL_TYPES, ModelType, TrainResult, train

__all__ = ["MODEL_TYPES", "Dataset", "ModelType", "TrainResult", "load_dataset", "train"]
