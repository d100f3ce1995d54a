"""Networks, checkpoints, preprocessing, Localizer, metrics, training, synthesis. No Qt, no SQL.

Keep this file free of heavy imports: importing the package must not import torch.
"""
