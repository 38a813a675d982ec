"""Reading finished runs: the report's sections and figures, parameter importance, and the
diagnostics of the best configuration (bands, router, complementarity)."""
