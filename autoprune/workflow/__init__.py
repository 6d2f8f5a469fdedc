"""The search pipeline: config, wiring a session, the one evaluation path, cached
baselines, and coding a compressed model into its ``.apz`` file within the search's budget.
"""
