"""kptrack training side: synthetic data, datasets, heatmap targets, networks, training loop.

Only the modules that need torch import it (heatmaps, dataset, models, loop); synth does not.
"""
