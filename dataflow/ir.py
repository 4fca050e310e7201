"""The intermediate representation in one place: tensors, accesses, expression trees, einsums
and cascades (re-exported from the modules that define them)."""

from .affine import IndexExpr
from .cascade import Cascade, Contraction, Recurrence
from .einsum import REDUCE_OPS, Einsum, Tensor
from .expr import FUNCTIONS, OP_KINDS, Access, BinOp, Call, Const, Expr, Neg

__all__ = ["IndexExpr", "Cascade", "Contraction", "Recurrence", "Einsum", "Tensor",
           "REDUCE_OPS", "FUNCTIONS", "OP_KINDS", "Access", "BinOp", "Call", "Const", "Expr",
           "Neg"]
