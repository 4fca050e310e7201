"""Validation: figures against the papers and reference simulators, golden cycle-count regression."""
