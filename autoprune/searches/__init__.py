"""Searches as users run them: the checks before any work, one tracked search (run folder,
MLflow run, result files) and a finished search's run folder, read back for ``apply RUN``.

The top of the library: it drives ``agents``, which drive ``envs`` and ``workflow``.
"""
