"""The types and loops every layer builds on: layer specs, policies, budgets, search
records, quantized tensors, errors, bisection, training loops and training-flag guards.

Nothing here imports the search pipeline, deployment, SB3, Optuna, Gymnasium or MLflow.
"""
