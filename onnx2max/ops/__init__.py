"""Op converters, one module per op family. Importing this package registers them all."""

from . import (  # noqa: F401
    activation,
    attention,
    control,
    elementwise,
    indexing,
    matmul,
    nn,
    norm,
    recurrent,
    reduce,
    resize,
    shape,
)
