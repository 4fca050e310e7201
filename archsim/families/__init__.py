"""Model families: each answers for the designs it claims (see :mod:`archsim.families.base`)."""
