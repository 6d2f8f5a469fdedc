"""Deployment: apply a policy to a trained model by the search's evaluation path, fine-tune
it and export it (``.pt``, ONNX, the ``.apz`` file within the budget, a report).
"""
