"""Model configurations: parameter counts against published figures, shapes against the
reference tables (../shared/reference), and the HuggingFace ``config.json`` loader."""
import json

import pytest

from dataflow.errors import CascadeError, FormatError
from dataflow.models import (
    ModelConfig,
    builtin_models,
    load_model,
    model_from_hf_config,
)

# ---------------------------------------------------------------------------- parameter counts
# Published totals, written here (not read from ModelConfig.published_params) so that a wrong
# shape and a wrong published_params cannot agree by accident.
PUBLISHED = {
    # Touvron et al. 2023, "Llama 2", Table 1 / model card: 6.74B, 13.0B, 69.0B (70B model)
    "llama2-7b": 6.74e9,
    "llama2-13b": 13.0e9,
    "llama2-70b": 69.0e9,
    # Meta Llama 3 model card: 8.03B and 70.6B
    "llama3-8b": 8.03e9,
    "llama3-70b": 70.6e9,
    # Brown et al. 2020 ("GPT-3"), Table 2.1: GPT-3 6.7B and 175B (174.6B in Table D.1)
    "gpt3-7b": 6.7e9,
    "gpt3-175b": 174.6e9,
    # Zhang et al. 2022 ("OPT"), Table 1: 66B
    "opt-66b": 66.0e9,
    # Mistral AI, "Mixtral of Experts" (Jiang et al. 2024): 46.7B total, 12.9B active per token
    "mixtral-8x7b": 46.7e9,
    # duplex.md "Workloads": GLaM 143B (Du et al. 2022: 1.2T is the 64E full model; 143B here)
    "glam": 143e9,
    # xAI grok-1 release / duplex.md "Workloads": 314B
    "grok-1": 314e9,
    # Devlin et al. 2019 ("BERT"), section 3: BERT-Base 110M
    "bert-base": 110e6,
}
ACTIVE = {"mixtral-8x7b": 12.9e9}   # Mixtral paper: 12.9B active parameters per token


@pytest.mark.parametrize("name,published", sorted(PUBLISHED.items()))
def test_params_match_published_within_1_percent(name, published):
    m = load_model(name)
    assert m.params() == pytest.approx(published, rel=0.01)
    # the config's own figure is the same publication
    assert m.published_params == pytest.approx(published, rel=1e-3)


def test_mixtral_active_params():
    m = load_model("mixtral-8x7b")
    assert m.params(active=True) == pytest.approx(ACTIVE["mixtral-8x7b"], rel=0.01)
    # active = total minus the 6 unused experts of every layer (3 matrices of d x ffn each)
    assert m.params() - m.params(active=True) == 32 * 6 * 3 * 4096 * 14336


def test_gpt3_13b_uses_neupims_hidden_size():
    # GPT-3 Table 2.1 gives the 13B model d_model = 5140 (13.0B parameters); NeuPIMs
    # (neupims.md "Workloads") uses 40 heads x 128 = 5120, which has ~1.2% fewer parameters.
    m = load_model("gpt3-13b")
    assert m.hidden == 5120 and m.heads == 40
    assert m.params() == pytest.approx(13.0e9, rel=0.015)
    assert m.params() < 13.0e9 * 0.995       # it really is the smaller shape
    # the paper's shape (d_model 5140, 40 heads of 128, FFN 4 x d_model) is within 1%
    paper = m.with_changes(hidden=5140, ffn=4 * 5140)
    assert paper.head_dim == 128 and paper.params() == pytest.approx(13.0e9, rel=0.01)


def test_every_published_figure_is_met():
    """Every built-in with a published figure lies within 1.5% of it (1% except GPT-3 13B)."""
    checked = 0
    for m in builtin_models():
        if not m.published_params:
            continue
        tol = 0.015 if m.name == "gpt3-13b" else 0.01
        assert m.params() == pytest.approx(m.published_params, rel=tol), m.name
        checked += 1
    assert checked >= 13


def test_llama2_7b_breakdown_by_hand():
    m = load_model("llama2-7b")
    b = m.param_breakdown()
    d, f, L, V = 4096, 11008, 32, 32000
    assert b["embedding"] == V * d
    assert b["attention"] == L * 4 * d * d
    assert b["ffn"] == L * 3 * d * f
    assert b["lm_head"] == V * d
    assert b["norm"] == (2 * L + 1) * d
    assert b["bias"] == b["router"] == b["pooler"] == 0
    assert m.params() == 6_738_415_616          # the released checkpoint's exact count
    assert m.matmul_params() == m.params() - V * d - (2 * L + 1) * d
    assert m.non_embedding_params() == m.params() - V * d


def test_gpt2_style_tied_head_counts_in_matmul_params_only():
    m = load_model("gpt3-7b")
    b = m.param_breakdown()
    assert m.tied_embeddings and b["lm_head"] == 0
    # the tied head still multiplies every token by vocab x hidden
    assert m.matmul_params() == b["attention"] + b["ffn"] + m.vocab * m.hidden


def test_bert_base_breakdown_by_hand():
    m = load_model("bert-base")
    b = m.param_breakdown()
    d, f, L = 768, 3072, 12
    assert b["embedding"] == (30522 + 512 + 2) * d
    assert b["attention"] == L * 4 * d * d and b["ffn"] == L * 2 * d * f
    assert b["pooler"] == d * d                       # its bias is counted with the biases
    assert b["bias"] == L * (4 * d + f + d) + d
    assert b["norm"] == (2 * L + 1) * 2 * d           # LayerNorm gain and bias, + embedding norm
    assert b["lm_head"] == 0
    # HuggingFace's BertModel (bert-base-uncased, with pooler) has 109,482,240 parameters
    assert m.params() == 109_482_240
    # the GEMM weights: attention, FFN and the pooler matrix (no embedding, no biases)
    assert m.matmul_params() == b["attention"] + b["ffn"] + d * d


def test_active_params_of_moe_models():
    glam = load_model("glam")
    # 16 MoE layers of 64 experts (GeLU: 2 matrices), top-2 active
    assert glam.moe_layers == 16
    expert = 2 * 4096 * 16384
    assert glam.params() - glam.params(active=True) == 16 * 62 * expert
    dense = load_model("llama2-7b")
    assert dense.params(active=True) == dense.params()


# ---------------------------------------------------------------------------- shapes
# duplex.md "Workloads": model | layers | hidden | FFN | heads | GQA group | experts | top-k
DUPLEX = {
    "mixtral-8x7b": (32, 4096, 14336, 32, 4, 8, 2),
    "glam": (32, 4096, 16384, 32, 1, 64, 2),
    "grok-1": (64, 6144, 32768, 48, 6, 8, 2),
    "opt-66b": (64, 9216, 36864, 72, 1, 0, 0),
    "llama3-70b": (80, 8192, 28672, 64, 8, 0, 0),
}


@pytest.mark.parametrize("name,row", sorted(DUPLEX.items()))
def test_duplex_workload_shapes(name, row):
    layers, hidden, ffn, heads, group, experts, top_k = row
    m = load_model(name)
    assert (m.layers, m.hidden, m.ffn, m.heads) == (layers, hidden, ffn, heads)
    assert m.group_size == group
    assert m.kv_heads == heads // group
    assert (m.experts, m.top_k) == (experts, top_k)


# fusemax.md "Evaluation": model | D | E=F | H | FFN
FUSEMAX = {
    "bert-base": (768, 64, 12, 3072),
    "trxl-wt103": (1024, 64, 16, 4096),
    "t5-small": (512, 64, 8, 2048),
    "xlm": (2048, 128, 16, 8192),
}


@pytest.mark.parametrize("name,row", sorted(FUSEMAX.items()))
def test_fusemax_workload_shapes(name, row):
    d, e, h, ffn = row
    m = load_model(name)
    assert (m.hidden, m.head_dim, m.heads, m.ffn) == (d, e, h, ffn)
    assert m.family == "encoder" and not m.lm_head


def test_t5_small_alias():
    assert load_model("t5-small-encoder") is load_model("t5-small")


# neupims.md "Workloads": GPT-3 7B (32 heads, d=4096), 13B (40, 5120), 30B (56, 7168),
# 175B (96, 12288)
NEUPIMS = {"gpt3-7b": (32, 4096), "gpt3-13b": (40, 5120), "gpt3-30b": (56, 7168),
           "gpt3-175b": (96, 12288)}


@pytest.mark.parametrize("name,row", sorted(NEUPIMS.items()))
def test_neupims_gpt3_shapes(name, row):
    heads, hidden = row
    m = load_model(name)
    assert (m.heads, m.hidden) == (heads, hidden)
    assert m.kv_heads == heads and m.head_dim == 128
    assert m.ffn == 4 * hidden


def test_builtin_lookup_is_case_and_separator_insensitive():
    assert load_model("LLAMA2_7B") is load_model("llama2-7b")
    assert load_model(" Mixtral-8x7B ").name == "mixtral-8x7b"


def test_unknown_builtin_lists_the_builtins():
    with pytest.raises(CascadeError) as info:
        load_model("llama9")
    msg = str(info.value)
    assert "llama9" in msg
    for m in builtin_models():
        assert m.name in msg


# ---------------------------------------------------------------------------- invalid configs
@pytest.mark.parametrize("changes,needle", [
    ({"heads": 32, "kv_heads": 6}, "multiple of kv_heads"),
    ({"experts": 8, "top_k": 9}, "top_k"),
    ({"experts": 8, "top_k": 0}, "top_k"),
    ({"experts": 4, "top_k": 2, "moe_every": 3}, "moe_every"),
    ({"hidden": 0}, "hidden"),
    ({"layers": 2.0}, "layers"),
    ({"ffn_kind": "geglu"}, "ffn_kind"),
    ({"family": "encdec"}, "family"),
])
def test_invalid_configs_raise(changes, needle):
    base = {"name": "m", "hidden": 64, "layers": 4, "heads": 8, "ffn": 128, "vocab": 100}
    with pytest.raises(CascadeError, match=needle):
        ModelConfig(**{**base, **changes})


# ---------------------------------------------------------------------------- config.json
# The released Llama-2-7b-hf config.json (the keys the loader reads, plus some it ignores).
LLAMA2_7B_JSON = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
    "hidden_size": 4096, "intermediate_size": 11008, "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 32, "vocab_size": 32000,
    "max_position_embeddings": 4096, "rms_norm_eps": 1e-05, "tie_word_embeddings": False,
    "torch_dtype": "float16", "rope_theta": 10000.0,
}
MIXTRAL_JSON = {
    "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_act": "silu",
    "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "vocab_size": 32000,
    "num_local_experts": 8, "num_experts_per_tok": 2, "max_position_embeddings": 32768,
    "tie_word_embeddings": False, "router_aux_loss_coef": 0.02,
}
# GPT-2 (124M) config.json: n_inner null means 4 x n_embd; embeddings tied by default.
GPT2_JSON = {
    "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
    "activation_function": "gelu_new", "n_ctx": 1024, "n_embd": 768, "n_head": 12,
    "n_inner": None, "n_layer": 12, "n_positions": 1024, "vocab_size": 50257,
}


def write(tmp_path, data, name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_llama_config_json_matches_builtin(tmp_path):
    m = load_model(write(tmp_path, LLAMA2_7B_JSON))
    ref = load_model("llama2-7b")
    assert (m.hidden, m.layers, m.heads, m.kv_heads, m.head_dim, m.ffn, m.vocab) == \
        (4096, 32, 32, 32, 128, 11008, 32000)
    assert (m.norm, m.ffn_kind, m.positional, m.family) == ("rmsnorm", "swiglu", "rope",
                                                            "decoder")
    assert not m.bias and not m.tied_embeddings and m.lm_head
    assert m.params() == ref.params() == 6_738_415_616
    assert m.param_breakdown() == ref.param_breakdown()
    assert m.source == str(tmp_path / "config.json")
    # a str path works too (recognised by the .json suffix / the slash)
    assert load_model(str(tmp_path / "config.json")).params() == ref.params()


def test_llama3_style_gqa_config_json(tmp_path):
    data = {**LLAMA2_7B_JSON, "num_key_value_heads": 8, "intermediate_size": 14336,
            "vocab_size": 128256}
    m = load_model(write(tmp_path, data))
    assert m.kv_heads == 8 and m.group_size == 4
    assert m.params() == load_model("llama3-8b").params()


def test_mixtral_config_json(tmp_path):
    m = load_model(write(tmp_path, MIXTRAL_JSON))
    ref = load_model("mixtral-8x7b")
    assert (m.experts, m.top_k, m.kv_heads, m.moe_every) == (8, 2, 8, 1)
    assert m.params() == ref.params()
    assert m.params(active=True) == ref.params(active=True)
    assert m.params(active=True) == pytest.approx(12.9e9, rel=0.01)


def test_gpt2_config_json(tmp_path):
    m = load_model(write(tmp_path, GPT2_JSON))
    assert (m.hidden, m.layers, m.heads, m.ffn, m.vocab) == (768, 12, 12, 3072, 50257)
    assert (m.norm, m.ffn_kind, m.positional, m.max_positions) == ("layernorm", "gelu",
                                                                   "learned", 1024)
    assert m.bias and m.tied_embeddings and m.lm_head and m.norm_position == "pre"
    # HuggingFace's GPT2LMHeadModel (gpt2) has 124,439,808 parameters
    assert m.params() == 124_439_808


def test_bert_config_json_is_a_post_norm_encoder(tmp_path):
    data = {"model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12,
            "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu",
            "max_position_embeddings": 512, "type_vocab_size": 2, "vocab_size": 30522}
    m = load_model(write(tmp_path, data))
    ref = load_model("bert-base")
    assert m.family == "encoder" and not m.lm_head and m.norm_position == "post"
    # BERT normalises the embeddings and has no final norm after its post-norm layers
    assert m.embedding_norm and not m.final_norm
    # the same as the built-in except the pooler (BertForMaskedLM's config has none)
    assert m.params() == ref.params() - (768 * 768 + 768)


def test_explicit_name_and_head_dim(tmp_path):
    data = {**LLAMA2_7B_JSON, "head_dim": 256, "num_attention_heads": 8,
            "num_key_value_heads": 2}
    path = write(tmp_path, data)
    m = model_from_hf_config(path, name="wide-heads")
    assert m.name == "wide-heads" and m.head_dim == 256
    # Q/O have heads*head_dim = 2048 columns, K/V kv_heads*head_dim = 512
    assert m.param_breakdown()["attention"] == 32 * (4096 * (2048 + 2 * 512) + 2048 * 4096)


def test_config_json_missing_file(tmp_path):
    path = tmp_path / "nope" / "config.json"
    with pytest.raises(FormatError, match="no such file") as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_config_json_invalid_json_names_the_file(tmp_path):
    path = write(tmp_path, '{"hidden_size": 4096,\n "num_hidden_layers": }')
    with pytest.raises(FormatError, match="invalid JSON") as info:
        load_model(path)
    assert str(path) in str(info.value)
    assert info.value.line == 2


def test_config_json_not_an_object(tmp_path):
    with pytest.raises(FormatError, match="a JSON object"):
        load_model(write(tmp_path, "[1, 2]"))


@pytest.mark.parametrize("key", ["hidden_size", "num_hidden_layers", "num_attention_heads",
                                 "vocab_size"])
def test_config_json_missing_required_key_is_named(tmp_path, key):
    data = {k: v for k, v in LLAMA2_7B_JSON.items() if k != key}
    path = write(tmp_path, data)
    with pytest.raises(FormatError) as info:
        load_model(path)
    msg = str(info.value)
    assert key in msg and str(path) in msg and "required" in msg


@pytest.mark.parametrize("value", ["4096", 4096.0, True, [4096]])
def test_config_json_non_integer_value(tmp_path, value):
    path = write(tmp_path, {**LLAMA2_7B_JSON, "hidden_size": value})
    with pytest.raises(FormatError, match="hidden_size: expected an integer") as info:
        load_model(path)
    assert repr(value) in str(info.value)


def test_config_json_unknown_activation(tmp_path):
    with pytest.raises(FormatError, match="hidden_act"):
        load_model(write(tmp_path, {**LLAMA2_7B_JSON, "hidden_act": "mish"}))


def test_config_json_heads_not_multiple_of_kv_heads(tmp_path):
    path = write(tmp_path, {**LLAMA2_7B_JSON, "num_key_value_heads": 5})
    with pytest.raises(CascadeError, match="multiple of kv_heads"):
        load_model(path)


def test_config_json_top_k_above_experts(tmp_path):
    path = write(tmp_path, {**MIXTRAL_JSON, "num_experts_per_tok": 9})
    with pytest.raises(CascadeError, match="top_k must be between 1 and experts"):
        load_model(path)
