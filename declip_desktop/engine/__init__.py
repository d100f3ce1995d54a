"""Networks, checkpoints, preprocessing, Localizer, metrics, training, synthesis. No Qt, no SQL.

Scripts: `from declip_desktop import Localizer` (see the package docstring and README's "Python API").

Keep this file free of heavy imports: importing the package must not import torch.
"""
