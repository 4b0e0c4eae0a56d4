"""workbench.widgets."""
