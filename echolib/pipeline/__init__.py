"""Running notebooks as programs: jupytext conversion, papermill execution, sweeps, the book."""
