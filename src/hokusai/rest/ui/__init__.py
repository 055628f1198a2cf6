"""The registry's web console at ``/ui``: lineage, contributors and webhook deliveries at a
glance, server-rendered, every asset shipped in this package (see docs/console.md)."""

from hokusai.rest.ui.app import CONTENT_SECURITY_POLICY, create_console

__all__ = ["CONTENT_SECURITY_POLICY", "create_console"]
