"""Transforms applied to built models: attention backends, FP8 storage, group offloading, regional compile.

Each leaves the model's state-dict keys and forward arguments as they are.
"""
