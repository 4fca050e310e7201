"""Pieces every family and mapper shares: the physics (:mod:`archsim.core.physics`: roofline
time, all-reduce algorithms, whole-cycle rounding, peak FLOP/s), the solver facade
(:mod:`archsim.core.solve`) and result identity with the per-family model versions
(:mod:`archsim.core.identity`)."""
