"""The ``wynerkit`` command line: the Typer app, its command groups and its error boundary."""
