"""litehrnet-kneron: Lite-HRNet / HRNet pose estimation from training to Kneron NPUs.

Layers (each imports only the ones below it):
``prepostprocess`` (numpy/OpenCV NPU emulation) -> ``mmpose_replacement`` (dict transforms)
-> ``litehrnet`` (models, data, evaluation, training, export, deploy) -> root scripts.
"""

__version__ = "0.1.0"
