"""wynerkit: information-theoretic bimodal generative models, composed from plugins.

The names exported here are the API a plugin author uses: the interfaces a component implements,
the ``hookimpl`` marker, the params base class and the ``Sample`` batch.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from wynerkit.components import BuildContext, ComponentParams, NoParams, Ref
from wynerkit.hookspecs import hookimpl
from wynerkit.interfaces import (
    BimodalModel,
    CriticLoss,
    DatasetProvider,
    Distribution,
    EvalContext,
    Evaluator,
    FeatureNet,
    Modality,
    ObjectiveTerm,
    Pair,
    RatioEstimator,
    Split,
    StepContext,
)
from wynerkit.sample import Sample
from wynerkit.spec.models import DatasetSpec, EstimatorSpec, EvaluatorSpec, ModalitySpec, ModelSpec

try:
    __version__ = version("wynerkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "BimodalModel",
    "BuildContext",
    "ComponentParams",
    "CriticLoss",
    "DatasetProvider",
    "DatasetSpec",
    "Distribution",
    "EstimatorSpec",
    "EvalContext",
    "Evaluator",
    "EvaluatorSpec",
    "FeatureNet",
    "Modality",
    "ModalitySpec",
    "ModelSpec",
    "NoParams",
    "ObjectiveTerm",
    "Pair",
    "RatioEstimator",
    "Ref",
    "Sample",
    "Split",
    "StepContext",
    "__version__",
    "hookimpl",
]
