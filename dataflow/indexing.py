"""NumPy index arrays for affine accesses (shared by evaluation and byte counting)."""

from __future__ import annotations

import numpy as np

from .expr import Access

__all__ = ["access_index_arrays"]


def access_index_arrays(access: Access, sizes: dict[str, int], values: dict[str, np.ndarray],
                        axes: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """Return one integer index array per dimension of ``access``.

    ``values[v]`` holds the values rank variable ``v`` takes; ``axes`` orders the variables
    (every variable of the access must be in ``axes``). The arrays broadcast together to an
    array with one axis per entry of ``axes`` (length 1 for variables the access lacks), so
    ``tensor[arrays]`` gathers the accessed elements over the iteration space.
    """
    ndim = len(axes)
    position = {v: i for i, v in enumerate(axes)}
    arrays = []
    for index in access.indices:
        coefs, const = index.resolve(sizes)
        array = np.full((1,) * ndim, const, dtype=np.intp)
        for var, coef in coefs.items():
            shape = [1] * ndim
            shape[position[var]] = len(values[var])
            array = array + coef * values[var].astype(np.intp).reshape(shape)
        arrays.append(array)
    return tuple(arrays)
