"""Lunar Workbench."""
