"""workbench.topography."""
