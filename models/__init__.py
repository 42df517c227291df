"""The onnx2max model zoo (plain torch; needs ``pip install 'onnx2max[torch]'``).

``ZOO[name](seed=0) -> (module, example_inputs)``; ``python -m models export DIR`` writes every
model as ``DIR/<name>.onnx`` with fixed shapes.
"""

from .zoo import ZOO

__all__ = ["ZOO"]
