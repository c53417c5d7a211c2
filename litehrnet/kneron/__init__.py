"""The chip's room: everything specific to Kneron NPUs (KL520, KL720, KL530, KL630, KL730).

Reads ONNX files and numpy arrays; never imports torch or the training code at import time.

- :mod:`.operators` + ``operators.yaml``: Kneron's operator table as data, per chip;
- :mod:`.checker`: which nodes of an ONNX graph run on the NPU (``python -m litehrnet.kneron.checker``);
- :mod:`.bundle`: the handoff bundle for Kneron's toolchain (``export2onnx.py --kneron-bundle``);
- :mod:`.int8`, :mod:`.calibration`, :mod:`.qdq`, :mod:`.fidelity`: int8 emulation (radix,
  calibration, QDQ ONNX, fidelity report).

Submodules are imported explicitly (``from litehrnet.kneron.checker import check_model``); this
package file imports nothing.
"""
