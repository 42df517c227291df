"""Op converters, one module per op family. Importing this package registers them all."""

from . import (  # noqa: F401
    activation,
    attention,
    bitwise,
    contrib,
    control,
    elementwise,
    indexing,
    loss,
    matmul,
    nn,
    norm,
    quant,
    recurrent,
    reduce,
    resize,
    shape,
    signal,
)
