"""Atsuko: complementarity-supervised spectral-band routing for multimodal emotion recognition.

The model library: data, model, metrics and single-run training. It never imports Ray.
"""

__version__ = "0.1.0"
