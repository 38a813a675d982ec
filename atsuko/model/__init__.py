"""The Atsuko model: spectral-band routing, masked encoders, dual-path router and MCM."""

from atsuko.model.atsuko import Atsuko, AtsukoOutput, LossOutput
from atsuko.model.bands import BandDecomposition, band_edges, dct_basis, path_projectors
from atsuko.model.mcm import BimodalOutput, complementarity, kl_to_router, per_sample_loss

__all__ = [
    "Atsuko",
    "AtsukoOutput",
    "BandDecomposition",
    "BimodalOutput",
    "LossOutput",
    "band_edges",
    "complementarity",
    "dct_basis",
    "kl_to_router",
    "path_projectors",
    "per_sample_loss",
]
