"""Model-artifact security: scan model files of every format and convert them to safetensors."""

from secmlops.scan.models.engine import Limits, ModelScanSettings, scan_paths

__all__ = ["Limits", "ModelScanSettings", "scan_paths"]
