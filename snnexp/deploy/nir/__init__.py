from snnexp.deploy.nir.export import check_exportable, export_nir, write_graph
from snnexp.models.nir_import import layers_from_nir
from snnexp.deploy.nir.simulators import PeerRefusal, installed, simulate
from snnexp.deploy.nir.target import NIRTarget

__all__ = ["NIRTarget", "PeerRefusal", "check_exportable", "export_nir", "installed", "layers_from_nir", "simulate",
           "write_graph"]
