"""Inference: networks, preprocessing, the Localizer, acceleration, int8, the starter network.

No Qt, no SQL, and no knowledge of where models live: the model store (`declip_desktop.modelstore`)
finds, imports and loads them, and `modelstore.loading.load_localizer(NAME)` hands a loaded
network to a `Localizer` here; training lives in `declip_desktop.training`. Neither is imported
from this package (an import-linter contract).

Scripts: `from declip_desktop import Localizer, load_localizer` (see the package docstring and
README's "Python API").

Keep this file free of heavy imports: importing the package must not import torch.
"""
