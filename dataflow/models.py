"""Model configurations: the built-in LLM/encoder shapes and HuggingFace-style ``config.json``.

A :class:`ModelConfig` holds the shape of a transformer (hidden size, layers, heads, KV heads,
FFN size and kind, experts, vocabulary, norms, biases, positional scheme) and counts its
parameters in closed form. :mod:`dataflow.transformer` turns a config plus a batch into an
einsum cascade; its weight tensors hold exactly the parameters counted here (a test checks
it).

Sources of the built-in shapes (cited per entry below):
  * Llama-2: Touvron et al. 2023, "Llama 2", Table 1 and the released ``config.json`` files;
  * Llama-3: Meta's released ``config.json`` files (Llama-3 8B / 70B);
  * GPT-3 7B/13B/30B/175B: NeuPIMs shapes (../shared/reference/neupims.md, "Workloads"):
    heads and hidden size from there, layers from Brown et al. 2020, Table 2.1 (30B, absent
    from that table, follows OPT-30B's 48 layers: Zhang et al. 2022, Table 1);
  * OPT-66B, Mixtral-8x7B, GLaM, Grok-1, Llama-3-70B: Duplex's workload table
    (../shared/reference/duplex.md, "Workloads") plus the public configs for vocabulary sizes;
  * BERT-Base, TrXL-wt103, T5-small (encoder), XLM: FuseMax's evaluation table
    (../shared/reference/fusemax.md, "Evaluation") plus the public configs for layers and
    vocabulary sizes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from .errors import CascadeError, FormatError

__all__ = ["ModelConfig", "builtin_models", "load_model", "model_from_hf_config",
           "NORMS", "FFN_KINDS", "POSITIONAL"]

NORMS = ("rmsnorm", "layernorm")
FFN_KINDS = ("swiglu", "gelu", "relu")
POSITIONAL = ("rope", "learned", "relative", "none")
FAMILIES = ("decoder", "encoder")


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a transformer model.

    Sizes are element counts. ``heads`` query heads of ``head_dim`` each; ``kv_heads`` key/value
    heads (``heads`` = MHA, 1 = MQA, between = GQA with group size heads/kv_heads). ``ffn`` is
    the FFN inner size (per expert for MoE). ``experts`` > 0 makes every ``moe_every``-th layer
    (the last of each group) a mixture of experts routed to ``top_k`` of them.
    ``published_params`` is the count the model's authors report (for validation; 0 when
    there is no single published figure for the modelled part), ``source`` says where the
    shape comes from.
    """

    name: str
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    kv_heads: int = 0                 # 0: same as heads (MHA)
    head_dim: int = 0                 # 0: hidden // heads
    family: str = "decoder"
    norm: str = "rmsnorm"
    norm_position: str = "pre"        # "pre" (GPT-2 onwards) or "post" (BERT, XLM)
    ffn_kind: str = "swiglu"
    positional: str = "rope"
    max_positions: int = 0            # rows of a learned position table
    type_vocab: int = 0               # BERT token-type embeddings
    bias: bool = False                # linear layers and norms carry biases
    tied_embeddings: bool = False     # LM head shares the token embedding
    lm_head: bool = True              # decoders end with an LM head (encoders here do not)
    embedding_norm: bool = False      # a norm right after the embeddings (BERT, XLM)
    final_norm: bool = True
    experts: int = 0
    top_k: int = 0
    moe_every: int = 1
    relative_buckets: int = 0         # T5 relative-position bias buckets (per head)
    pooler: bool = False              # BERT's pooler: a dense layer on the first token
    published_params: float = 0.0
    source: str = ""
    aliases: tuple = field(default=(), compare=False)

    def __post_init__(self) -> None:
        kv = self.kv_heads or self.heads
        hd = self.head_dim or (self.hidden // self.heads if self.heads else 0)
        object.__setattr__(self, "kv_heads", kv)
        object.__setattr__(self, "head_dim", hd)
        where = f"model {self.name!r}"
        for name in ("hidden", "layers", "heads", "ffn", "vocab", "kv_heads", "head_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise CascadeError(f"{where}: {name} must be a positive integer, found {value!r}")
        if self.heads % self.kv_heads:
            raise CascadeError(f"{where}: heads ({self.heads}) must be a multiple of kv_heads "
                               f"({self.kv_heads})")
        for name, allowed in (("family", FAMILIES), ("norm", NORMS),
                              ("ffn_kind", FFN_KINDS), ("positional", POSITIONAL),
                              ("norm_position", ("pre", "post"))):
            if getattr(self, name) not in allowed:
                raise CascadeError(f"{where}: {name} must be one of {', '.join(allowed)}, "
                                   f"found {getattr(self, name)!r}")
        if self.experts:
            if not 1 <= self.top_k <= self.experts:
                raise CascadeError(f"{where}: top_k must be between 1 and experts "
                                   f"({self.experts}), found {self.top_k}")
            if self.moe_every < 1 or self.layers % self.moe_every:
                raise CascadeError(f"{where}: layers ({self.layers}) must be a multiple of "
                                   f"moe_every ({self.moe_every})")

    # ------------------------------------------------------------------ derived shape
    @property
    def group_size(self) -> int:
        """Query heads per KV head (1 for MHA, ``heads`` for MQA)."""
        return self.heads // self.kv_heads

    @property
    def moe_layers(self) -> int:
        """Number of MoE layers (0 for a dense model)."""
        return self.layers // self.moe_every if self.experts else 0

    @property
    def ffn_matrices(self) -> int:
        """Weight matrices per FFN (3 for SwiGLU: gate, up, down; else 2)."""
        return 3 if self.ffn_kind == "swiglu" else 2

    # ------------------------------------------------------------------ parameters
    @property
    def norm_params(self) -> int:
        """Parameters of one norm (gain, plus bias for a LayerNorm with biases)."""
        return self.hidden * (2 if self.norm == "layernorm" and self.bias else 1)

    def param_breakdown(self, active: bool = False) -> dict[str, int]:
        """Return parameter counts by component (elements): ``embedding`` (token, position,
        token-type and relative-position tables: looked up, not multiplied), ``attention``
        and ``ffn`` (weight matrices; FFN includes experts), ``router``, ``lm_head`` (0 when
        tied), ``pooler``, ``bias`` (of linear layers), ``norm``. ``active=True`` counts only
        the ``top_k`` experts a token uses in each MoE layer."""
        d, f, m = self.hidden, self.ffn, self.ffn_matrices
        q_out, kv_out = self.heads * self.head_dim, self.kv_heads * self.head_dim
        dense = self.layers - self.moe_layers
        ffns = dense + self.moe_layers * (self.top_k if active else self.experts)
        bias = 0
        if self.bias:
            bias = self.layers * (q_out + 2 * kv_out + d) + ffns * ((m - 1) * f + d)
        norms = 2 * self.layers + int(self.final_norm) + int(self.embedding_norm)
        return {
            "embedding": (self.vocab + self.max_positions + self.type_vocab) * d
            + self.relative_buckets * self.heads,
            "attention": self.layers * (d * (q_out + 2 * kv_out) + q_out * d),
            "ffn": ffns * m * d * f,
            "router": self.moe_layers * d * self.experts,
            "lm_head": self.vocab * d if self.lm_head and not self.tied_embeddings else 0,
            "pooler": d * d if self.pooler else 0,
            "bias": bias + (d if self.pooler else 0),     # the pooler's bias counts here
            "norm": norms * self.norm_params,
        }

    def params(self, active: bool = False) -> int:
        """Return the total parameter count (elements); see :meth:`param_breakdown`."""
        return sum(self.param_breakdown(active).values())

    def matmul_params(self, active: bool = False) -> int:
        """Return the elements of the weight matrices a token is multiplied by: attention,
        FFN/experts (``active``: the top-k only), router, pooler and the LM head (counted
        even when tied to the embedding, since the head still multiplies by it). Each costs
        one multiply-accumulate per token."""
        b = self.param_breakdown(active)
        head = self.vocab * self.hidden if self.lm_head else 0
        return b["attention"] + b["ffn"] + b["router"] + b["pooler"] + head

    def non_embedding_params(self, active: bool = False) -> int:
        """Return the parameters that are used in arithmetic (all but the lookup tables):
        each costs one multiply-accumulate (2 FLOPs) per token that uses it."""
        return self.params(active) - self.param_breakdown(active)["embedding"]

    # ------------------------------------------------------------------ export
    def summary(self) -> dict:
        """Return the fields ``archsim models`` lists: name, params, layers, hidden, heads,
        kv_heads, experts (plus top_k, ffn, vocab, head_dim, published_params, source)."""
        return {"name": self.name, "params": self.params(), "layers": self.layers,
                "hidden": self.hidden, "heads": self.heads, "kv_heads": self.kv_heads,
                "experts": self.experts, "top_k": self.top_k, "ffn": self.ffn,
                "vocab": self.vocab, "head_dim": self.head_dim, "family": self.family,
                "published_params": self.published_params, "source": self.source}

    def to_dict(self) -> dict:
        """Return every field as a JSON-ready dict."""
        d = asdict(self)
        d.pop("aliases")
        return d

    def with_changes(self, **changes) -> "ModelConfig":
        """Return a copy with some fields replaced (validated anew)."""
        return replace(self, **changes)


# ---------------------------------------------------------------------------- built-ins
_LLAMA2 = "Llama 2 (Touvron et al. 2023), Table 1 and the released config.json"
_NEUPIMS = "../shared/reference/neupims.md (Workloads); layers: GPT-3 paper Table 2.1"
_DUPLEX = "../shared/reference/duplex.md (Workloads)"
_FUSEMAX = "../shared/reference/fusemax.md (Evaluation)"


def _gpt3(name, hidden, heads, layers, published, source=_NEUPIMS):
    # GPT-3 (Brown et al. 2020, section 2.1): GPT-2 architecture: pre-LayerNorm with biases,
    # GeLU FFN of 4 x hidden, learned positions (2048), 50257-token BPE vocabulary, LM head
    # tied to the token embedding.
    return ModelConfig(name, hidden=hidden, layers=layers, heads=heads, ffn=4 * hidden,
                       vocab=50257, norm="layernorm", ffn_kind="gelu", positional="learned",
                       max_positions=2048, bias=True, tied_embeddings=True,
                       published_params=published, source=source)


_BUILTINS = [
    ModelConfig("llama2-7b", hidden=4096, layers=32, heads=32, ffn=11008, vocab=32000,
                published_params=6.74e9, source=_LLAMA2),
    ModelConfig("llama2-13b", hidden=5120, layers=40, heads=40, ffn=13824, vocab=32000,
                published_params=13.0e9, source=_LLAMA2),
    ModelConfig("llama2-70b", hidden=8192, layers=80, heads=64, kv_heads=8, ffn=28672,
                vocab=32000, published_params=69.0e9, source=_LLAMA2),
    ModelConfig("llama3-8b", hidden=4096, layers=32, heads=32, kv_heads=8, ffn=14336,
                vocab=128256, published_params=8.03e9,
                source="Meta Llama 3 8B config.json (128256-token vocabulary)"),
    ModelConfig("llama3-70b", hidden=8192, layers=80, heads=64, kv_heads=8, ffn=28672,
                vocab=128256, published_params=70.6e9,
                source=_DUPLEX + "; vocabulary: Meta Llama 3 70B config.json"),
    _gpt3("gpt3-7b", 4096, 32, 32, 6.7e9),
    # GPT-3 Table 2.1 lists the 13B model with d_model 5140; NeuPIMs uses 5120, so this
    # shape has 12.85B parameters against the published 13.0B (1.2% fewer).
    _gpt3("gpt3-13b", 5120, 40, 40, 13.0e9),
    _gpt3("gpt3-30b", 7168, 56, 48, 30.0e9,
          source="../shared/reference/neupims.md (Workloads); layers: OPT-30B (Zhang et al. "
                 "2022, Table 1), GPT-3 has no 30B model"),
    _gpt3("gpt3-175b", 12288, 96, 96, 174.6e9),
    # OPT (Zhang et al. 2022): pre-LayerNorm, ReLU FFN, biases, learned positions (2048 + 2
    # offset rows), 50272-token vocabulary, tied LM head.
    ModelConfig("opt-66b", hidden=9216, layers=64, heads=72, ffn=36864, vocab=50272,
                norm="layernorm", ffn_kind="relu", positional="learned", max_positions=2050,
                bias=True, tied_embeddings=True, published_params=66.0e9,
                source=_DUPLEX + "; OPT paper Table 1"),
    ModelConfig("mixtral-8x7b", hidden=4096, layers=32, heads=32, kv_heads=8, ffn=14336,
                vocab=32000, experts=8, top_k=2, published_params=46.7e9,
                source=_DUPLEX + "; Mixtral config.json (vocabulary 32000)"),
    # GLaM (Du et al. 2022): every other layer is MoE (64 experts, top-2), GeLU FFN with two
    # matrices, 256K SentencePiece vocabulary; 143B total as in the Duplex table.
    ModelConfig("glam", hidden=4096, layers=32, heads=32, ffn=16384, vocab=256000,
                ffn_kind="gelu", positional="relative", experts=64, top_k=2, moe_every=2,
                tied_embeddings=True, published_params=143e9,
                source=_DUPLEX + "; GLaM paper (alternating MoE layers, 256K vocabulary)"),
    ModelConfig("grok-1", hidden=6144, layers=64, heads=48, kv_heads=8, ffn=32768,
                vocab=131072, experts=8, top_k=2, tied_embeddings=True,
                published_params=314e9,
                source=_DUPLEX + "; xAI grok-1 release (131072-token vocabulary)"),
    # BERT-Base (Devlin et al. 2019): post-LayerNorm encoder, GeLU, biases, 512 learned
    # positions, 2 token types, 30522 WordPiece vocabulary, embedding LayerNorm, pooler.
    ModelConfig("bert-base", hidden=768, layers=12, heads=12, ffn=3072, vocab=30522,
                family="encoder", norm="layernorm", norm_position="post", ffn_kind="gelu",
                positional="learned", max_positions=512, type_vocab=2, bias=True,
                lm_head=False, embedding_norm=True, final_norm=False, pooler=True,
                published_params=110e6, source=_FUSEMAX + "; BERT paper"),
    # Transformer-XL on WikiText-103 (Dai et al. 2019): 18 layers; relative positions. Its
    # adaptive input/softmax is not modelled, so there is no published figure to compare.
    ModelConfig("trxl-wt103", hidden=1024, layers=18, heads=16, ffn=4096, vocab=267735,
                family="encoder", norm="layernorm", norm_position="post", ffn_kind="relu",
                positional="relative", bias=True, lm_head=False, final_norm=False,
                source=_FUSEMAX + "; Transformer-XL paper (18 layers)"),
    # T5-small encoder (Raffel et al. 2020): 6 layers, RMS-style norm without bias, ReLU,
    # no biases, 32 relative-position buckets per head, 32128-token vocabulary.
    ModelConfig("t5-small", hidden=512, layers=6, heads=8, ffn=2048, vocab=32128,
                family="encoder", norm="rmsnorm", ffn_kind="relu", positional="relative",
                relative_buckets=32, lm_head=False, source=_FUSEMAX + "; T5 config.json",
                aliases=("t5-small-encoder",)),
    # XLM (Lample & Conneau 2019), the en-2048 model: 12 layers, post-LayerNorm, GeLU,
    # biases, 512 positions, 30145-token vocabulary.
    ModelConfig("xlm", hidden=2048, layers=12, heads=16, ffn=8192, vocab=30145,
                family="encoder", norm="layernorm", norm_position="post", ffn_kind="gelu",
                positional="learned", max_positions=512, bias=True, lm_head=False,
                embedding_norm=True, final_norm=False,
                source=_FUSEMAX + "; XLM mlm-en-2048 config.json"),
]
_BY_NAME = {m.name: m for m in _BUILTINS}
for _m in _BUILTINS:
    for _alias in _m.aliases:
        _BY_NAME[_alias] = _m


def builtin_models() -> list[ModelConfig]:
    """Return the built-in model configurations, in a stable order."""
    return list(_BUILTINS)


def _normalize_name(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def load_model(name_or_path) -> ModelConfig:
    """Return a built-in model by name (case-insensitive, e.g. ``llama2-7b``) or the model in a
    HuggingFace-style ``config.json`` file (a path). Raises CascadeError for an unknown name
    (listing the built-ins) and FormatError for an unreadable or incomplete file."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".json") or "/" in text:
        return model_from_hf_config(Path(text))
    key = _normalize_name(text)
    if key in _BY_NAME:
        return _BY_NAME[key]
    raise CascadeError(f"unknown model {text!r} (built-in models: "
                       f"{', '.join(m.name for m in _BUILTINS)}; or give a config.json path)")


# ---------------------------------------------------------------------------- HuggingFace
_HF_ACTIVATIONS = {"silu": "swiglu", "swish": "swiglu", "gelu": "gelu", "gelu_new": "gelu",
                   "gelu_pytorch_tanh": "gelu", "relu": "relu"}


def model_from_hf_config(path: Path, name: str | None = None) -> ModelConfig:
    """Return the :class:`ModelConfig` described by a HuggingFace ``config.json`` on disk.

    Read keys (with the common aliases): ``hidden_size`` (``n_embd``, ``d_model``),
    ``num_hidden_layers`` (``n_layer``, ``num_layers``), ``num_attention_heads`` (``n_head``,
    ``num_heads``), ``num_key_value_heads``, ``head_dim``, ``intermediate_size`` (``ffn_dim``,
    ``d_ff``, ``n_inner``; default 4 x hidden), ``vocab_size``, ``num_local_experts``
    (``num_experts``), ``num_experts_per_tok``, ``hidden_act``, ``max_position_embeddings``
    (learned positions only for GPT-2/OPT/BERT-like ``model_type``), ``tie_word_embeddings``,
    ``model_type``. Nothing is downloaded. FormatError names the file and the missing key.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FormatError(str(path), "", "a config.json file", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(str(path), "", "a readable config.json", str(exc)) from None
    except json.JSONDecodeError as exc:
        raise FormatError(str(path), "", "JSON", f"invalid JSON ({exc.msg})",
                          exc.lineno) from None
    if not isinstance(data, dict):
        raise FormatError(str(path), "", "a JSON object", type(data).__name__)

    def get(*keys, default=None, required=True):
        for key in keys:
            if key in data and data[key] is not None:
                value = data[key]
                if isinstance(value, bool) or not isinstance(value, int):
                    raise FormatError(str(path), key, "an integer", repr(value))
                return value
        if required and default is None:
            raise FormatError(str(path), keys[0], "an integer (required)", "nothing")
        return default

    model_type = str(data.get("model_type", "")).lower()
    hidden = get("hidden_size", "n_embd", "d_model")
    heads = get("num_attention_heads", "n_head", "num_heads")
    act = str(data.get("hidden_act", data.get("activation_function",
                                               data.get("feed_forward_proj", "silu"))))
    ffn_kind = _HF_ACTIVATIONS.get(act.replace("gated-", ""), None)
    if ffn_kind is None:
        raise FormatError(str(path), "hidden_act", "one of " + ", ".join(_HF_ACTIVATIONS),
                          repr(act))
    gpt_like = model_type in ("gpt2", "gpt_neo", "gptj", "opt", "bert", "roberta", "xlm")
    encoder = model_type in ("bert", "roberta", "xlm", "t5")
    # BERT-like post-norm encoders: a LayerNorm right after the embeddings, none at the end
    post_norm = model_type in ("bert", "roberta", "xlm")
    experts = get("num_local_experts", "num_experts", "n_routed_experts", default=0,
                  required=False)
    cfg = ModelConfig(
        name=name or data.get("_name_or_path") or path.parent.name or path.stem,
        hidden=hidden,
        layers=get("num_hidden_layers", "n_layer", "num_layers"),
        heads=heads,
        kv_heads=get("num_key_value_heads", "num_kv_heads", default=heads, required=False),
        head_dim=get("head_dim", "d_kv", default=0, required=False),
        ffn=get("intermediate_size", "ffn_dim", "d_ff", "n_inner", default=4 * hidden,
                required=False),
        vocab=get("vocab_size"),
        family="encoder" if encoder else "decoder",
        norm="layernorm" if gpt_like else "rmsnorm",
        norm_position="post" if post_norm else "pre",
        ffn_kind=ffn_kind if not (ffn_kind == "swiglu" and gpt_like) else "gelu",
        positional="learned" if gpt_like else "rope",
        max_positions=get("max_position_embeddings", "n_positions", default=0,
                          required=False) if gpt_like else 0,
        type_vocab=get("type_vocab_size", default=0, required=False),
        bias=gpt_like,
        tied_embeddings=bool(data.get("tie_word_embeddings", gpt_like)),
        lm_head=not encoder,
        embedding_norm=post_norm,
        final_norm=not post_norm,
        experts=experts,
        top_k=get("num_experts_per_tok", "moe_topk", default=2 if experts else 0,
                  required=False),
        source=str(path),
    )
    return cfg


def config_fields() -> list[str]:
    """Return the names of :class:`ModelConfig` fields (for CLI help and docs)."""
    return [f.name for f in fields(ModelConfig) if f.name != "aliases"]
