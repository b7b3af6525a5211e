from snnexp.viz.curves import plot_curves, read_epoch_metrics
from snnexp.viz.raster import plot_raster, record_spikes

__all__ = ["plot_curves", "plot_raster", "read_epoch_metrics", "record_spikes"]
