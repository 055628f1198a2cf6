"""One router per resource, joined in :mod:`hokusai.api.app`."""
