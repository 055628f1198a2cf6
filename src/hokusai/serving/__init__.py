"""The prediction server: load from the MLflow registry, validate, predict fast, hot-swap."""
