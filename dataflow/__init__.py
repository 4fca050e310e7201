"""dataflow — the workload language of archsim: einsum cascades.

A :class:`Cascade` is a program of :class:`Einsum` s over named tensors with rank sizes. It is
written as text (``QK[m,p] = Q[e,p] * K[e,m]``) or YAML (see :mod:`dataflow.cascade_io`),
validated on construction, analysed (ops by kind, bytes, op/B, GEMM shapes, dependency DAG,
recurrences) and executable with NumPy for testing (:func:`evaluate`).
"""

from .affine import IndexExpr
from .builtin import builtin_cascades, load_cascade
from .cascade import Cascade, Contraction, Recurrence
from .einsum import REDUCE_OPS, Einsum, Tensor
from .errors import CascadeError, FormatError, describe_value, format_key_path
from .evaluate import evaluate
from .expr import FUNCTION_COSTS, FUNCTIONS, OP_KINDS, Access, BinOp, Call, Const, Expr, Neg
from .generate import random_cascade
from .parse import parse_einsum, parse_expr, parse_index
from .yamlio import KeyLines, check_keys, load_yaml_strict, yaml_line_of

__all__ = [
    "Access", "BinOp", "Call", "Cascade", "CascadeError", "Const", "Contraction", "Einsum",
    "Expr", "FUNCTIONS", "FUNCTION_COSTS", "FormatError", "IndexExpr", "KeyLines", "Neg",
    "OP_KINDS", "REDUCE_OPS", "Recurrence", "Tensor", "builtin_cascades", "check_keys",
    "describe_value", "evaluate", "format_key_path", "load_cascade", "load_yaml_strict",
    "parse_einsum", "parse_expr", "parse_index", "random_cascade", "yaml_line_of",
]
