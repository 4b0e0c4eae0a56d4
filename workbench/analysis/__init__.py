"""workbench.analysis."""
