"""Element-wise ops with NumPy broadcasting (Add, Mul, activations, Pow...).
"""

from __future__ import annotations

from .algebra import POSITIONAL, Lin, Value
from .ops import ELEMENTWISE, POW


class ElementwiseOps:
    """Element-wise ops, mixed into the importer."""

    # ------------------------------------------------------------------ element-wise ops
    def _broadcast(self, shape, values, letters: str = POSITIONAL) -> list[Lin]:
        """Return one logical index per output dimension for inputs broadcast to ``shape``."""
        rank = len(shape)
        lins = []
        for d, size in enumerate(shape):
            refs = []
            for value in values:
                j = d - (rank - len(value.shape))
                if j >= 0:
                    refs.append((value, j))
            lins.append(self._lin(size, refs, letters[d % len(letters)]))
        return lins

    @staticmethod
    def _align(lins, value: Value) -> list[Lin]:
        return lins[len(lins) - len(value.shape):] if value.shape else []

    def _op_elementwise(self, node, attrs) -> None:
        op = node.op_type
        inputs = [self._val(i) for i in node.input if i]
        if op == "Pow":
            exponent = inputs[1].const
            if exponent not in POW:
                self._fail("Pow needs a constant exponent 0.5, 1, 2, 3 or -1")
            template, inputs = POW[exponent], inputs[:1]
        else:
            template = ELEMENTWISE[op]
            arity = template.count("{1}") + 1
            if len(inputs) != arity:
                self._fail(f"expected {arity} input(s), found {len(inputs)}")
        out = node.output[0]
        shape = self._shape(out)
        lins = self._broadcast(shape, inputs)
        reads = [self._read(v, self._align(lins, v)) for v in inputs]
        self._emit(out, shape, lins, template.format(*reads))
