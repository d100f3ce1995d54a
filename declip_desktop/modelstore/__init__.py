"""The model store: installed models, their cards, checkpoint import, downloads. No Qt, no SQL.

- `store`: `ModelStore` and `InstalledModel` over `<name>.safetensors` + `<name>.json`
  (cards are `common.model_card.ModelCard`), the default model, `find_model`; no torch.
- `registry` (the authors' nine checkpoints, OpenAI's backbones), `download` (the only
  network access, over `fetch`, `http_checks`, `partial_files`, `download_errors`); no torch.
- `safetensors_header`, `model_facts`: what a weights file holds, read without torch.
- `torch_files` (safe reading of pickles and CLIP archives), `checkpoint_import` (the
  authors' `.pth` → safetensors + card), `weights_file`, `loading` (`resolve_model`,
  `load_network`, `load_localizer`): the torch side, imported only where a model is loaded.

Above the inference engine (`declip_desktop.engine`), which never imports this package.
"""
