"""The search pipeline: config, the checks before work, wiring a session, the one
evaluation path, cached baselines, a tracked search and a finished search's run folder.
"""
