"""The registry REST service (FastAPI): thin routes over the library and the webhook layer."""
