"""workbench.inversion."""
