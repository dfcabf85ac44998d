"""The guide's module path for the model registry: ``from backend.ml_engine.model_registry import ...``.

Everything lives in :mod:`backend.ml_engine.registry` (the model store); this module re-exports
its public names so the guide's code runs as written::

    model_registry = get_model_registry(Settings())
    await model_registry.register_model(name="hybrid_cnn_lstm", version=timestamp,
                                        model_path=model_path, metrics=test_metrics)
"""

from backend.ml_engine.registry import *  # noqa: F403 - the guide's path re-exports the package
from backend.ml_engine.registry import __all__ as __all__
