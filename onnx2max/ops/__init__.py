"""Op converters, one module per op family. Importing this package registers them all."""

from . import elementwise, matmul, nn, reduce, shape  # noqa: F401
