"""ONNX export: the library behind ``export2onnx.py`` (torch; not imported by the deploy layer)."""

from .metadata import PRODUCER, REQUIRED_KEYS, metadata_from_config, pose_metadata
from .onnx_export import (
    INPUT_NAME,
    OUTPUT_NAME,
    SUPPORTED_OPSETS,
    ExportError,
    ExportReport,
    check_export_args,
    export_onnx,
    read_metadata,
    run_onnxruntime,
)

__all__ = [
    "PRODUCER", "REQUIRED_KEYS", "metadata_from_config", "pose_metadata", "INPUT_NAME",
    "OUTPUT_NAME", "SUPPORTED_OPSETS", "ExportError", "ExportReport", "check_export_args",
    "export_onnx", "read_metadata", "run_onnxruntime",
]
