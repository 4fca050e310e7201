"""Built-in design files (YAML). Installed as the package ``archsim.designs`` so that designs are
found by name after a plain ``pip install .``; see archsim.spec.builtin_designs_dir."""
