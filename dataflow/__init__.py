"""dataflow — the workload language of archsim: einsum cascades.

A :class:`Cascade` is a program of :class:`Einsum` s over named tensors with rank sizes. It is
written as text (``QK[m,p] = Q[e,p] * K[e,m]``) or YAML (see :mod:`dataflow.cascade_io`),
validated on construction, analysed (ops by kind, bytes, op/B, GEMM shapes, dependency DAG,
recurrences) and executable with NumPy for testing (:func:`evaluate`).
"""

from .affine import IndexExpr
from .attention import (
    ATTENTION_KINDS,
    AttentionPart,
    attention_cascade,
    attention_einsums,
)
from .builtin import builtin_cascades, load_cascade
from .cascade import Cascade, Contraction, Recurrence, Repeat
from .einsum import REDUCE_OPS, Einsum, Tensor
from .errors import CascadeError, FormatError, describe_value, format_key_path
from .evaluate import evaluate
from .expr import FUNCTION_COSTS, FUNCTIONS, OP_KINDS, Access, BinOp, Call, Const, Expr, Neg
from .generate import random_cascade
from .models import ModelConfig, builtin_models, load_model, model_from_hf_config
from .onnx import import_onnx
from .parse import parse_einsum, parse_expr, parse_index
from .passes import passes
from .transformer import (
    DTYPES,
    PHASES,
    Request,
    flops,
    flops_by_role,
    model_cascade,
    model_graph,
    phase_requests,
)
from .yamlio import KeyLines, check_keys, load_yaml_strict, yaml_line_of

__all__ = [
    "ATTENTION_KINDS", "DTYPES", "PHASES", "Access", "AttentionPart", "BinOp", "Call", "Cascade", "CascadeError",
    "Const", "Contraction", "Einsum", "Expr", "FUNCTIONS", "FUNCTION_COSTS", "FormatError",
    "IndexExpr", "KeyLines", "ModelConfig", "Neg", "OP_KINDS", "REDUCE_OPS", "Recurrence", "Repeat", "Request", "Tensor",
    "attention_cascade", "attention_einsums", "builtin_cascades", "builtin_models", "check_keys",
    "describe_value", "evaluate", "flops", "flops_by_role", "format_key_path", "import_onnx",
    "load_cascade",
    "load_model", "load_yaml_strict", "model_cascade", "model_from_hf_config", "model_graph",
    "parse_einsum", "parse_expr", "parse_index", "passes", "phase_requests", "random_cascade",
    "yaml_line_of",
]
