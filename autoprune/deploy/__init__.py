"""Deployment: apply a policy to a trained model (the search's evaluation path, fine-tuning,
export) and code a compressed model into its ``.apz`` file within the budget.
"""
