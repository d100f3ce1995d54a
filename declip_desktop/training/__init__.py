"""Training and data: decoder training, the starter model, datasets, evaluation. No Qt, no SQL.

- `decoder_training.train(TrainConfig)` (the paper's frozen-backbone recipe) over `config`,
  `training_data`, `frozen_network`, `trainer`, `feature_cache`, `augment`;
- `starter_training` (the from-scratch starter network) and `synth` (its synthetic data);
- `datasets` (Dolos / COCO-SD / plain layouts, masks), `metrics` (the paper's per-image IoU,
  F1, AP), `evaluation` (a model over a labelled set), `reproduce` (re-running a bundle).

Uses the inference engine and the model store; neither of them imports this package.
"""
