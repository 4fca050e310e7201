"""Reference execution of a cascade with NumPy (float64), for tests on small sizes.

Einsums run in the cascade's schedule (program order, with recurrence groups run as loops over
their rank, see ``Cascade.recurrences``). Each einsum is vectorized over its iteration space:
accesses become gathers (views for plain indices), element-wise operators broadcast, a product
reduced with ``+`` is one ``np.einsum`` call and other reductions use ``ufunc.reduce``. Rank
sizes are at least 1, so no reduction is empty and reduce identities are never needed.
Elements that no einsum writes stay NaN; reading one raises CascadeError.
"""

from __future__ import annotations

import numpy as np

from .errors import CascadeError
from .expr import Access, BinOp, Call, Const, Neg
from .indexing import access_index_arrays

__all__ = ["evaluate"]


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))          # = 1/(1+exp(-x)) without overflow


def _gelu(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


_FUNCTIONS = {
    "exp": np.exp, "sqrt": np.sqrt, "rsqrt": lambda x: 1.0 / np.sqrt(x),
    "relu": lambda x: np.maximum(x, 0.0), "sigmoid": _sigmoid,
    "silu": lambda x: x * _sigmoid(x), "tanh": np.tanh, "gelu": _gelu,
    "max": np.maximum, "min": np.minimum,
}
_BINOPS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}
_REDUCE = {"+": np.add, "max": np.maximum, "min": np.minimum}


def evaluate(cascade, inputs: dict) -> dict[str, np.ndarray]:
    """Run ``cascade`` on ``inputs`` (input tensor name -> array of its shape) in float64.

    Returns a dict with every tensor the cascade reads or writes (name -> float64 array; the
    inputs are copies). Raises CascadeError for a missing, unknown or wrongly shaped input, or
    when an einsum reads an element that no earlier einsum wrote.
    """
    expected = cascade.inputs()
    written_by_cascade = {e.output_tensor for e in cascade.einsums}
    for name in inputs:
        if name in written_by_cascade:
            raise CascadeError(f"evaluate: {name} is computed by cascade {cascade.name!r}; it "
                               f"cannot be given as an input (inputs: {', '.join(expected)})")
        if name not in expected:
            raise CascadeError(f"evaluate: unknown input {name!r} (inputs of cascade "
                               f"{cascade.name!r}: {', '.join(expected)})")
    values: dict[str, np.ndarray] = {}
    for name in expected:
        if name not in inputs:
            raise CascadeError(f"evaluate: missing input {name!r} of shape "
                               f"{cascade.shape(name)} (inputs: {', '.join(expected)})")
        try:
            array = np.array(inputs[name], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise CascadeError(f"evaluate: input {name!r} is not numeric: {exc}") from None
        if array.shape != cascade.shape(name):
            ranks = ", ".join(cascade.tensors[name].ranks)
            raise CascadeError(f"evaluate: input {name!r} has shape {array.shape}, expected "
                               f"{cascade.shape(name)} (ranks {ranks})")
        values[name] = array
    written: dict[str, np.ndarray] = {}
    for names, rank in cascade.schedule():
        einsums = [cascade.einsum(n) for n in names]
        if rank is None:
            _run(cascade, einsums[0], values, written, None)
        else:
            for value in range(cascade.ranks[rank]):
                for einsum in einsums:
                    _run(cascade, einsum, values, written, {rank: value})
    return values


def _align(array: np.ndarray, axes: tuple, target: tuple) -> np.ndarray:
    """Transpose/expand ``array`` (one axis per name in ``axes``) to the order of ``target``
    (a superset), with length-1 axes for names it lacks."""
    perm = sorted(range(len(axes)), key=lambda i: target.index(axes[i]))
    if perm != list(range(len(axes))):
        array = array.transpose(perm)
    present = set(axes)
    shape = []
    it = iter(array.shape)
    for name in target:
        shape.append(next(it) if name in present else 1)
    return array.reshape(shape)


def _run(cascade, einsum, values, written, fixed) -> None:
    """Evaluate one einsum (restricted to ``fixed`` rank values, if any) into ``values``."""
    sizes = cascade._sizes
    space = cascade.iteration_space(einsum.name)
    var_values = {v: (np.array([fixed[v]]) if fixed and v in fixed else np.arange(n))
                  for v, n in space.items()}

    def gather(access: Access):
        """Return (values of ``access`` over the iteration space, their axis names)."""
        axes = access.variables()
        source = values[access.tensor]
        plain = [ix.plain for ix in access.indices]
        if None not in plain and len(set(plain)) == len(plain):
            index = tuple(slice(int(var_values[v][0]), int(var_values[v][-1]) + 1)
                          for v in plain)
            position = {v: i for i, v in enumerate(plain)}
            order = [position[v] for v in axes]
        else:
            index = access_index_arrays(access, sizes, var_values, axes)
            order = None
        if access.tensor in written:
            mask = written[access.tensor][index]
            if not mask.all():
                raise CascadeError(f"evaluate: '{einsum.text}' reads elements of "
                                   f"{access.tensor} that no earlier einsum wrote ({access}"
                                   f"{' with ' + str(fixed) if fixed else ''})")
        array = source[index]
        if order is not None and order != list(range(len(order))):
            array = array.transpose(order)
        return array, axes

    def ev(node):
        """Return (array, axis names) for an expression node."""
        if isinstance(node, Access):
            return gather(node)
        if isinstance(node, Const):
            return np.asarray(node.value), ()
        if isinstance(node, Neg):
            array, axes = ev(node.arg)
            return -array, axes
        if isinstance(node, BinOp):
            return _combine(_BINOPS[node.op], [ev(node.left), ev(node.right)])
        if isinstance(node, Call):
            operands = [ev(a) for a in node.args]
            return _combine(_FUNCTIONS[node.func], operands)
        raise CascadeError(f"evaluate: unsupported expression node {node!r}")

    out_axes = einsum.output.variables()
    reduced = einsum.reduced_ranks()
    if einsum.is_mac():
        (left, lax), (right, rax) = ev(einsum.expr.left), ev(einsum.expr.right)
        label = {v: i for i, v in enumerate(einsum.rank_vars())}
        keep = tuple(v for v in out_axes if v in lax or v in rax)
        result = np.einsum(left, [label[v] for v in lax], right, [label[v] for v in rax],
                           [label[v] for v in keep])
        axes = keep
    else:
        result, axes = ev(einsum.expr)
        result = np.asarray(result, dtype=np.float64)
        if reduced:
            result = _REDUCE[einsum.reduce_op].reduce(
                result, axis=tuple(axes.index(v) for v in reduced))
            axes = tuple(v for v in axes if v not in reduced)
    result = _align(np.asarray(result), axes, out_axes)
    result = np.broadcast_to(result, tuple(len(var_values[v]) for v in out_axes))

    out = einsum.output
    if out.tensor not in values:
        values[out.tensor] = np.full(cascade.shape(out.tensor), np.nan)
        written[out.tensor] = np.zeros(cascade.shape(out.tensor), dtype=bool)
    index = access_index_arrays(out, sizes, var_values, out_axes)
    values[out.tensor][index] = result
    written[out.tensor][index] = True


def _combine(func, operands):
    """Apply an element-wise ``func`` to (array, axes) operands aligned by axis name."""
    axes: tuple = ()
    for _, op_axes in operands:
        axes += tuple(v for v in op_axes if v not in axes)
    arrays = [_align(np.asarray(a), a_axes, axes) for a, a_axes in operands]
    return func(*arrays), axes
