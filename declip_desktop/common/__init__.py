"""Lowest layer: small helpers shared by engine, cases, analysis, reports and GUI.

Nothing here imports torch, Qt or SQL, so every other layer may depend on it.
"""
