"""Pieces every family and mapper shares: the solver facade (:mod:`archsim.core.solve`) and
result identity with the per-family model versions (:mod:`archsim.core.identity`)."""
