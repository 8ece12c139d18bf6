"""kptrack training side: synthetic data, datasets, heatmap targets, networks, training loop.

synth/ (the synthetic dataset writer), dataset, augment, heatmaps and score import no torch, so
``kptrack synth`` and ``kptrack score`` run on a machine that only runs the tracker; models,
config, checkpoint, schedule, validation, distributed, runlog and loop need torch.
"""
