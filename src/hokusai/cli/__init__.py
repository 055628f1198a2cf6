"""The ``hokusai`` command line: one Typer sub-app per resource."""
