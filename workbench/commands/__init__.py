"""workbench.commands."""
