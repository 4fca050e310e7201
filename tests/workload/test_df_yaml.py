"""Strict YAML loading, the cascade YAML format, round trips and the built-in cascades."""

import pickle
from pathlib import Path

import pytest

from dataflow import (Cascade, CascadeError, FormatError, builtin_cascades, describe_value,
                      load_cascade, load_yaml_strict, random_cascade, yaml_line_of)

GOOD = """\
name: attention-3pass
ranks: {m: 16, p: 8, e: 4, f: 4}
tensors:                       # optional for plain tensors
  Q:  {ranks: [e, p], bits: 16}
  QK: {ranks: [m, p], bits: 32}
einsums:
  - QK[m,p] = Q[e,p] * K[e,m]
  - GM[p] = max(QK[m,p])
  - {name: sn, text: "SN[m,p] = exp(QK[m,p] - GM[p])"}
"""


# ----------------------------------------------------------------------------- strict loader

def test_format_error_text_and_attributes():
    error = FormatError("designs/npu.yaml", ("units", "sa0", "rows"), "a positive integer",
                        describe_value("abc"), 12)
    assert str(error) == ("designs/npu.yaml:12: units.sa0.rows: expected a positive integer, "
                          "found 'abc'")
    assert (error.file, error.key_path, error.line) == ("designs/npu.yaml", "units.sa0.rows", 12)
    assert (error.expected, error.found) == ("a positive integer", "'abc'")
    assert isinstance(error, CascadeError) and isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.line == 12
    assert str(FormatError(None, ("einsums", 2), "a string", "a list")) == \
        "<yaml>: einsums[2]: expected a string, found a list"


def test_duplicate_key_names_path_and_both_lines():
    text = "a: 1\nunits:\n  sa0:\n    rows: 4\n    cols: 8\n    rows: 5\n"
    with pytest.raises(FormatError) as info:
        load_yaml_strict(text, "npu.yaml")
    error = info.value
    assert error.file == "npu.yaml" and error.line == 6
    assert error.key_path == "units.sa0.rows"
    assert str(error) == ("npu.yaml:6: units.sa0.rows: expected each key once, found a "
                          "duplicate at line 6 (first at line 4)")


def test_duplicate_top_level_key_in_a_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: a\nranks: {m: 4}\nname: b\n")
    with pytest.raises(FormatError, match=r"c.yaml:3: name: expected each key once, found a "
                                          r"duplicate at line 3 \(first at line 1\)"):
        load_yaml_strict(path)
    with pytest.raises(FormatError, match="first at line 1"):
        load_yaml_strict(str(path))


def test_line_table():
    data, lines = load_yaml_strict("a: {b: 1}\nc:\n  - 1\n  - {d: 2}\n", with_lines=True)
    assert data == {"a": {"b": 1}, "c": [1, {"d": 2}]}
    assert lines[("c",)] == 2 and lines[("c", 1)] == 4 and lines[("c", 1, "d")] == 4
    assert yaml_line_of(lines, ("c", 1, "d", "missing")) == 4
    assert lines.line(("nothing",)) == 1


def test_loader_rejects_bad_yaml_and_merge_keys():
    with pytest.raises(FormatError, match=r"g.yaml:2: expected valid YAML, found a syntax error"):
        load_yaml_strict("a: [1,\n b: 2", "g.yaml")
    with pytest.raises(FormatError, match=r"m.yaml:3: y: expected plain keys, found a merge key"):
        load_yaml_strict("x: &a {b: 1}\ny:\n  <<: *a\n  c: 2\n", "m.yaml")
    with pytest.raises(FormatError, match="nofile.yaml: expected an existing YAML file"):
        load_yaml_strict("nofile.yaml")
    assert load_yaml_strict("") is None


# ----------------------------------------------------------------------------- cascade files

def test_cascade_from_yaml():
    cascade = Cascade.from_yaml(GOOD, "attention.yaml")
    assert cascade.name == "attention-3pass"
    assert [e.name for e in cascade.einsums] == ["QK", "GM", "sn"]
    assert cascade.tensors["QK"].bits == 32 and cascade.tensors["K"].bits == 16
    assert cascade.source == "attention.yaml"


def test_yaml_round_trip():
    cascade = Cascade.from_yaml(GOOD)
    text = cascade.to_yaml()
    assert "{name: \"sn\", text: \"SN[m,p] = exp(QK[m,p] - GM[p])\"}" in text
    assert Cascade.from_yaml(text) == cascade
    for name in builtin_cascades():
        builtin = load_cascade(name)
        assert Cascade.from_yaml(builtin.to_yaml()) == builtin
    generated = random_cascade(40, seed=5)
    assert Cascade.from_yaml(generated.to_yaml()) == generated


def yaml_error(text):
    with pytest.raises(CascadeError) as info:
        Cascade.from_yaml(text, "attention.yaml")
    assert "\n" not in str(info.value)
    return info.value


def test_unknown_keys_name_the_key_path_and_line():
    error = yaml_error(GOOD.replace("einsums:", "extra: 1\neinsums:"))
    assert isinstance(error, FormatError)
    assert str(error).startswith("attention.yaml:6: extra: expected one of the keys name,")
    assert "found unknown key 'extra'" in str(error)
    error = yaml_error(GOOD.replace("QK: {ranks: [m, p], bits: 32}",
                                    "QK: {ranks: [m, p], bitz: 32}"))
    assert str(error).startswith("attention.yaml:5: tensors.QK.bitz: expected one of the keys "
                                 "ranks, bits, extents")
    error = yaml_error(GOOD.replace('{name: sn, text:', '{nam: sn, text:'))
    assert "attention.yaml:9: einsums[2].nam:" in str(error)


def test_wrong_values_name_the_key_path():
    error = yaml_error(GOOD.replace("bits: 32", "bits: abc"))
    assert str(error) == ("attention.yaml:5: tensors.QK.bits: expected a positive integer "
                          "(bits), found 'abc'")
    error = yaml_error(GOOD.replace("m: 16", "m: -1"))
    assert str(error) == "attention.yaml:2: ranks.m: expected a positive integer size, found -1"
    error = yaml_error(GOOD.replace("  - GM[p] = max(QK[m,p])", "  - [1, 2]"))
    assert str(error).startswith("attention.yaml:8: einsums[1]: expected an einsum text")
    error = yaml_error("name: a\neinsums: [\"Y[m] = X[m]\"]\n")
    assert "expected a key 'ranks'" in str(error)
    error = yaml_error(GOOD.replace("  Q:  {ranks: [e, p], bits: 16}", "  Q:  {ranks: e}"))
    assert "tensors.Q.ranks: expected a list of rank names" in str(error)


def test_duplicate_tensor_declaration():
    error = yaml_error(GOOD.replace("  QK: {", "  Q: {ranks: [p]}\n  QK: {"))
    assert isinstance(error, FormatError)
    assert "tensors.Q: expected each key once" in str(error)
    assert "(first at line 4)" in str(error)


def test_cascade_errors_in_a_file_carry_file_and_line():
    error = yaml_error(GOOD.replace("exp(QK[m,p] - GM[p])", "exp(QK[m,p] - GM[q])"))
    assert str(error) == ("attention.yaml:9: einsums[2] 'SN[m,p] = exp(QK[m,p] - GM[q])': "
                          "unknown rank 'q' (ranks: m, p, e, f)")
    assert error.einsum_index == 2
    error = yaml_error(GOOD.replace("GM[p] = max(QK[m,p])", "GM[p] = max(QK[m,p]"))
    assert str(error).startswith("attention.yaml:8: einsums[1] 'GM[p] = max(QK[m,p]': "
                                 "expected ',' or ')'")
    error = yaml_error(GOOD.replace("bits: 32", "bits: 32, extents: {m: 0}"))
    assert str(error).startswith("attention.yaml:5: tensors.QK.extents.m: expected a "
                                 "positive integer or a size expression")


# ----------------------------------------------------------------------------- built-ins

def test_builtin_cascades_list_and_load():
    names = builtin_cascades()
    assert {"gemm", "attention", "attention_deferred", "attention_1pass", "mlp"} <= set(names)
    attention = load_cascade("attention")
    assert dict(attention.ranks) == {"m": 1024, "p": 1024, "e": 64, "f": 64}
    assert [e.name for e in attention.einsums] == ["QK", "GM", "SN", "SD", "A", "AV"]
    assert load_cascade("gemm").ops("Z") == {"mac": 1024 * 4096 * 1024}
    mlp = load_cascade("mlp")
    assert mlp.contraction("H") is not None and mlp.ops("G")["exp"] == 1024 * 4096


def test_load_cascade_by_path_and_overrides(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(GOOD)
    assert load_cascade(str(path)).name == "attention-3pass"
    assert load_cascade(Path(path), {"m": 2}).shape("QK") == (2, 8)
    with pytest.raises(CascadeError, match="ranks override: unknown rank 'z'"):
        load_cascade("attention", {"z": 3})


def test_load_cascade_unknown_name_lists_builtins():
    with pytest.raises(CascadeError) as info:
        load_cascade("atention")
    message = str(info.value)
    assert "unknown cascade 'atention'" in message
    assert "attention, attention_1pass" in message and "gemm" in message
