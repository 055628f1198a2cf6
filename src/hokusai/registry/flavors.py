"""Model object → MLflow flavor, exact pip requirements and skops trusted types.

The flavor is chosen by the model's type, never by "try sklearn and fall back on any error":

======================================  ==========  ==========================================
model                                   flavor      pip requirements (pinned to installed)
======================================  ==========  ==========================================
``xgboost.XGBModel`` / ``Booster``      xgboost     mlflow, xgboost, numpy, scipy, pandas
``lightgbm.LGBMModel`` / ``Booster``    lightgbm    mlflow, lightgbm, numpy, scipy, pandas
scikit-learn estimator                  sklearn     mlflow, scikit-learn, skops, numpy, scipy,
                                                    pandas (+ packages of foreign types inside)
``mlflow.pyfunc.PythonModel``           pyfunc      inferred by MLflow (unknown code)
object with ``predict(x)``              pyfunc      wraps the bound ``predict``
one-argument callable                   pyfunc      the callable itself
======================================  ==========  ==========================================

Pinning the requirements ourselves for the known flavors skips MLflow's requirement inference,
a subprocess that takes ~4.4 s of a ~4.8 s ``log_model`` on this machine kind, while listing
exactly the packages that inference finds (minus the unrelated ones it picks up from the
caller's process).
"""

from __future__ import annotations

import importlib.metadata
import inspect
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from hokusai.errors import UnsupportedModelError, ValidationError

__all__ = ["FlavorPlan", "plan_flavor", "requirements_for"]

_SCIENTIFIC_STACK = ("numpy", "scipy", "pandas")


@dataclass(frozen=True)
class FlavorPlan:
    """How one model object is logged: the MLflow flavor and its ``log_model`` arguments."""

    flavor: str
    """``"sklearn"``, ``"xgboost"``, ``"lightgbm"`` or ``"pyfunc"``."""
    log_kwargs: dict[str, Any] = field(default_factory=dict)
    """Flavor-specific keyword arguments for ``mlflow.<flavor>.log_model`` (model included)."""
    pip_requirements: list[str] | None = None
    """Exact pins, or None to let MLflow infer (unknown code in a pyfunc)."""
    predict: Callable[[Any], Any] | None = None
    """In-memory predict used to validate the input example before anything is logged."""

    def log_model(self, **kwargs: Any) -> Any:
        """Call ``mlflow.<flavor>.log_model`` with the plan's arguments plus ``kwargs``."""
        module = _flavor_module(self.flavor)
        return module.log_model(**self.log_kwargs, **kwargs)


def _flavor_module(flavor: str) -> Any:
    if flavor == "sklearn":
        import mlflow.sklearn

        return mlflow.sklearn
    if flavor == "xgboost":
        import mlflow.xgboost

        return mlflow.xgboost
    if flavor == "lightgbm":
        import mlflow.lightgbm

        return mlflow.lightgbm
    import mlflow.pyfunc

    return mlflow.pyfunc


@cache
def _pin(distribution: str) -> str | None:
    """``name==version`` for an installed distribution, None when it is not installed."""
    try:
        return f"{distribution}=={importlib.metadata.version(distribution)}"
    except importlib.metadata.PackageNotFoundError:
        return None


@cache
def _distributions_by_module() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


def _pins(distributions: Sequence[str]) -> list[str]:
    """Pinned requirements, MLflow first, without duplicates or missing packages."""
    seen: dict[str, str] = {}
    for dist in ("mlflow", *distributions, *_SCIENTIFIC_STACK):
        pin = _pin(dist)
        if pin is not None:
            seen.setdefault(dist.lower(), pin)
    return list(seen.values())


def _is_instance_of(model: object, module_name: str, *class_names: str) -> bool:
    """isinstance against a class of ``module_name`` without importing it.

    A model of that library can exist only if the library is already imported, so an
    unimported library means "no" at no cost.
    """
    module = sys.modules.get(module_name)
    if module is None:
        return False
    classes = tuple(getattr(module, name) for name in class_names if hasattr(module, name))
    return bool(classes) and isinstance(model, classes)


def _sklearn_plan(model: Any) -> FlavorPlan:
    import mlflow.sklearn

    params = inspect.signature(mlflow.sklearn.log_model).parameters
    kwargs: dict[str, Any] = {"sk_model": model}
    extra_distributions: list[str] = []
    if "skops_trusted_types" in params:
        # MLflow ≥ 3.5 saves with skops, which refuses to load types it was not told to trust.
        # We trust exactly the types this model contains: we are the ones who produced it.
        trusted = _untrusted_types(model)
        kwargs.update(serialization_format="skops", skops_trusted_types=trusted)
        serializer = "skops"
        extra_distributions = _distributions_of_types(trusted)
    else:
        kwargs.update(serialization_format="cloudpickle")
        serializer = "cloudpickle"
    requirements = _pins(["scikit-learn", serializer, *extra_distributions])
    return FlavorPlan("sklearn", kwargs, requirements, model.predict)


_UNTRUSTED_BY_SHAPE: dict[frozenset[str], list[str]] = {}


def _untrusted_types(model: Any) -> list[str]:
    """The types skops will refuse to load unless trusted, for this model.

    Finding them exactly means serialising the model with skops (MLflow then serialises it
    again): ~15 ms for a 10-tree forest, ~650 ms for 500 trees. The answer depends only on the
    types in the model's object graph, so it is computed once per *shape* (that set of types,
    found by a cheap walk) and reused for every later model of the same shape.
    """
    shape = _type_shape(model)
    cached = _UNTRUSTED_BY_SHAPE.get(shape) if shape else None
    if cached is not None:
        return list(cached)
    import skops.io

    trusted = sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    if shape:
        _UNTRUSTED_BY_SHAPE[shape] = trusted
    return list(trusted)


def _type_shape(root: Any, *, budget: int = 200_000) -> frozenset[str]:
    """Every type reachable from ``root`` through attributes and containers (empty when the
    graph is too large to walk cheaply, which disables the cache)."""
    import numpy as np

    seen: set[int] = set()
    types: set[str] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if len(seen) > budget:
            return frozenset()
        kind = type(obj)
        types.add(f"{kind.__module__}.{kind.__qualname__}")
        if isinstance(obj, str | bytes | int | float | bool | type(None)):
            continue
        if isinstance(obj, np.ndarray):
            types.add(f"numpy.dtype[{obj.dtype.str}]")
            if obj.dtype == object:
                stack.extend(obj.ravel().tolist())
        elif isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        else:
            attributes = getattr(obj, "__dict__", None)
            if isinstance(attributes, dict):
                stack.extend(attributes.values())
    return frozenset(types)


def _distributions_of_types(type_names: Sequence[str]) -> list[str]:
    """Distributions providing the given dotted type names, beyond scikit-learn itself."""
    roots = {name.split(".", 1)[0] for name in type_names} - {
        "sklearn",
        "builtins",
        "numpy",
        "scipy",
    }
    if not roots:
        return []  # the common case: no need to read the installed-package table (~1 s)
    by_module = _distributions_by_module()
    found: list[str] = []
    for root in sorted(roots):
        for dist in by_module.get(root, []):
            if dist not in found:
                found.append(dist)
    return found


def plan_flavor(model: Any) -> FlavorPlan:
    """Choose how to log ``model``; raise UnsupportedModelError for anything unknown."""
    if model is None:
        raise UnsupportedModelError("Model cannot be None.")
    if _is_instance_of(model, "xgboost", "XGBModel", "Booster"):
        predict = model.predict if hasattr(model, "get_params") else None
        return FlavorPlan("xgboost", {"xgb_model": model}, _pins(["xgboost"]), predict)
    if _is_instance_of(model, "lightgbm", "LGBMModel", "Booster"):
        return FlavorPlan("lightgbm", {"lgb_model": model}, _pins(["lightgbm"]), model.predict)
    if _is_instance_of(model, "sklearn.base", "BaseEstimator"):
        return _sklearn_plan(model)

    import mlflow.pyfunc

    if isinstance(model, mlflow.pyfunc.PythonModel):
        return FlavorPlan("pyfunc", {"python_model": model}, None, _python_model_predict(model))
    predict_attr = getattr(model, "predict", None)
    if callable(predict_attr) and _accepts_one_argument(predict_attr):
        return FlavorPlan("pyfunc", {"python_model": predict_attr}, None, predict_attr)
    if callable(model) and _accepts_one_argument(model):
        return FlavorPlan("pyfunc", {"python_model": model}, None, model)
    raise UnsupportedModelError(
        f"Cannot register a {type(model).__module__}.{type(model).__qualname__}: expected a "
        "scikit-learn, XGBoost or LightGBM model, an mlflow.pyfunc.PythonModel, an object with "
        "predict(model_input), or a one-argument callable."
    )


def _accepts_one_argument(func: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return len(parameters) == 1


def _python_model_predict(model: Any) -> Callable[[Any], Any] | None:
    """A predict for a PythonModel that does not need its ``load_context`` artifacts."""
    if getattr(model, "load_context", None) is not None and _overrides(model, "load_context"):
        return None  # needs artifacts that only exist once logged; MLflow validates it then
    parameters = inspect.signature(model.predict).parameters
    if "context" in parameters:
        return lambda data: model.predict(None, data)
    return lambda data: model.predict(data)


def _overrides(model: Any, method: str) -> bool:
    import mlflow.pyfunc

    return getattr(type(model), method) is not getattr(mlflow.pyfunc.PythonModel, method)


def requirements_for(
    plan: FlavorPlan,
    pip_requirements: Sequence[str] | None,
    extra_pip_requirements: Sequence[str] | None,
    input_example: Any,
) -> dict[str, list[str]]:
    """The ``pip_requirements`` / ``extra_pip_requirements`` to log ``plan``'s model with: the
    caller's, else the plan's exact pins, so MLflow never infers them (a ~4 s subprocess)."""
    if pip_requirements is not None:
        if extra_pip_requirements is not None:
            raise ValidationError("Pass pip_requirements or extra_pip_requirements, not both.")
        return {"pip_requirements": list(pip_requirements)}
    if plan.pip_requirements is not None:
        return {"pip_requirements": [*plan.pip_requirements, *(extra_pip_requirements or [])]}
    if extra_pip_requirements is not None:
        return {"extra_pip_requirements": list(extra_pip_requirements)}
    if input_example is None and plan.flavor == "pyfunc":
        # MLflow needs something to go on for a callable; its own defaults are the honest floor.
        import mlflow.pyfunc

        return {"pip_requirements": list(mlflow.pyfunc.get_default_pip_requirements())}
    return {}
