"""kptrack runtime core: geometry, camera, object models, rendering, inference, decoding,
pose solving and the frame loop. This package never imports torch."""

__version__ = "0.1.0"
