"""The assembled library: the registry with the webhook layer wired in (the documented
``hokusai.services.model_registry`` import path)."""
