"""Experiments built on the families: the serving loop, Composition of Experts, design-space sweeps."""
