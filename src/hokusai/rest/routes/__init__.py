"""One router per resource, joined in :mod:`hokusai.rest.app`."""
