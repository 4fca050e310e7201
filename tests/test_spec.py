"""Design files (archsim.spec): loading, --set overrides, and error messages.

Every error must name the file, the line (where the key exists), the key path and what was
expected; these tests write small design files to tmp_path and check the exact wording's parts.
"""
from __future__ import annotations

import re

import pytest

from archsim.errors import DesignError, UserError
from archsim.spec import Design, builtin_designs, builtin_designs_dir, load_design

# A small, complete design. Line numbers below refer to this text (1-based).
BASE = """\
name: tiny
description: a small test design
clock_hz: 1.0e+9
units:
  sa:
    kind: systolic_array
    rows: 8
    cols: 4
    dataflow: ws
    scratchpad: spm
    energy:
      mac_pj: 1.5
memories:
  spm:
    kind: sram
    capacity_bytes: 65536
    bandwidth_bytes_per_s: 2.0e+11
    backing: hbm
    energy: {read_pj_per_byte: 1.0, write_pj_per_byte: 1.0}
  hbm:
    kind: dram
    capacity_bytes: 1048576
    bandwidth_bytes_per_s: 1.0e+11
    energy: {read_pj_per_byte: 30.0, write_pj_per_byte: 30.0}
"""
LINE = {text.strip(): i for i, text in enumerate(BASE.splitlines(), start=1)}


def edited(old: str, new: str) -> str:
    """BASE with the one occurrence of ``old`` replaced by ``new``."""
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


@pytest.fixture
def write(tmp_path):
    """write(text, name="d.yaml") -> path of a design file with that text."""
    def _write(text: str, name: str = "d.yaml"):
        p = tmp_path / name
        p.write_text(text)
        return p
    return _write


def error_of(path, overrides=()) -> str:
    with pytest.raises(DesignError) as info:
        load_design(path, overrides)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


# --------------------------------------------------------------------------- loading
def test_base_design_loads_with_its_values(write):
    d = load_design(write(BASE))
    assert isinstance(d, Design)
    assert d.name == "tiny"
    assert d.clock_hz == 1e9
    assert list(d.units) == ["sa"]
    sa = d.units["sa"]
    assert (sa.kind, sa.rows, sa.cols, sa.dataflow, sa.scratchpad) == (
        "systolic_array", 8, 4, "ws", "spm")
    assert d.memories["spm"].capacity_bytes == 65536
    assert d.memories["spm"].backing == "hbm"
    assert d.memories["hbm"].backing is None
    assert d.outermost_memory("spm") == "hbm"
    assert d.bandwidth_bytes_per_cycle == {"spm": 200.0, "hbm": 100.0}


def test_builtin_npu_loads():
    assert "sa128" in builtin_designs()
    assert (builtin_designs_dir() / "sa128.yaml").is_file()
    d = load_design("sa128")
    assert d.name == "sa128"
    assert d.source.endswith("sa128.yaml")
    assert d.clock_hz == 1e9
    assert set(d.units) == {"sa", "vu", "link"}   # link: added for its interconnect
    assert (d.units["sa"].rows, d.units["sa"].cols, d.units["sa"].dataflow) == (128, 128, "ws")
    assert d.units["vu"].lanes == 128
    assert d.memories["spm"].capacity_bytes == 2 * 1024 * 1024
    assert d.memories["hbm"].capacity_bytes == 32 * 2**30


def test_bandwidth_bytes_per_cycle_is_bandwidth_over_clock():
    d = load_design("sa128")
    for name, m in d.memories.items():
        assert d.bandwidth_bytes_per_cycle[name] == pytest.approx(
            m.bandwidth_bytes_per_s / d.clock_hz)
    assert d.bandwidth_bytes_per_cycle == {"spm": 2048.0, "hbm": 1024.0}
    fast = load_design("sa128", ["clock_hz=2e9"])
    assert fast.bandwidth_bytes_per_cycle == {"spm": 1024.0, "hbm": 512.0}


def test_hash_is_stable_and_follows_the_resolved_design(write):
    h = load_design("sa128").hash
    assert re.fullmatch(r"[0-9a-f]{12}", h)
    assert load_design("sa128").hash == h
    assert load_design("sa128", ["units.sa.rows=64"]).hash != h
    assert load_design("sa128", ["units.sa.rows=64"]).hash == \
        load_design("sa128", ["units.sa.rows=64"]).hash
    # overriding a key with the value it already has is the same design
    assert load_design("sa128", ["units.sa.rows=128"]).hash == h
    assert load_design("sa128", ["clock_hz=1e9"]).hash == h
    assert load_design("sa128", ["clock_hz=1000000000"]).hash == h
    # the resolved design written back out loads to the same hash
    d = load_design("sa128", ["units.sa.dataflow=os"])
    again = load_design(write(d.to_yaml()))
    assert again.hash == d.hash != h


def test_design_object_with_overrides(write):
    d = load_design(write(BASE))
    assert load_design(d) is d
    d2 = load_design(d, ["units.sa.rows=16"])
    assert d2.units["sa"].rows == 16 and d.units["sa"].rows == 8
    assert d2.overrides == ("units.sa.rows=16",)


@pytest.mark.parametrize("written", ["1.0e+9", "1.0e9", "1e9", "1000000000", "1.0E+9"])
def test_float_notations_are_accepted_and_equal(write, written):
    d = load_design(write(edited("clock_hz: 1.0e+9", f"clock_hz: {written}")))
    assert d.clock_hz == 1e9
    assert isinstance(d.clock_hz, float)
    assert isinstance(d.resolved["clock_hz"], float)
    assert d.hash == load_design(write(BASE, "base.yaml")).hash


def test_float_with_exponent_in_a_nested_key(write):
    d = load_design(write(edited("bandwidth_bytes_per_s: 2.0e+11", "bandwidth_bytes_per_s: 2e11")))
    assert d.memories["spm"].bandwidth_bytes_per_s == 2e11
    assert d.bandwidth_bytes_per_cycle["spm"] == 200.0


# --------------------------------------------------------------------------- errors
def test_design_error_is_a_user_error():
    assert issubclass(DesignError, UserError)


def test_unknown_key_lists_allowed_keys(write):
    p = write(edited("    rows: 8\n", "    rows: 8\n    rowz: 3\n"))
    msg = error_of(p)
    assert msg.startswith(f"{p}:{LINE['rows: 8'] + 1}: units.sa.rowz: unknown key 'rowz'")
    allowed = msg.split("expected one of:")[1]
    for key in ("kind", "rows", "cols", "dataflow", "scratchpad", "energy"):
        assert key in allowed


def test_unknown_top_level_key(write):
    p = write(BASE + "colour: red\n")
    msg = error_of(p)
    assert msg.startswith(f"{p}:{len(BASE.splitlines()) + 1}: colour: unknown key 'colour'")
    assert "name, description, clock_hz, units, memories" in msg


def test_unknown_memory_key(write):
    p = write(edited("    backing: hbm\n", "    backing: hbm\n    latency: 3\n"))
    msg = error_of(p)
    assert msg.startswith(f"{p}:{LINE['backing: hbm'] + 1}: memories.spm.latency: unknown key")
    assert "capacity_bytes" in msg and "bandwidth_bytes_per_s" in msg


def test_duplicate_key_names_both_lines(write):
    p = write(edited("    rows: 8\n", "    rows: 8\n    rows: 16\n"))
    msg = error_of(p)
    first, second = LINE["rows: 8"], LINE["rows: 8"] + 1
    assert msg.startswith(f"{p}:{second}: units.sa.rows:")
    assert f"line {second}" in msg and f"first at line {first}" in msg
    assert "duplicate" in msg


def test_missing_required_key(write):
    p = write(edited("    cols: 4\n", ""))
    msg = error_of(p)
    assert msg.startswith(f"{p}:{LINE['sa:']}: units.sa.cols: missing required key 'cols'")
    assert "int" in msg


def test_missing_required_top_level_key(write):
    p = write(edited("clock_hz: 1.0e+9\n", ""))
    msg = error_of(p)
    assert msg.startswith(f"{p}:")
    assert "clock_hz: missing required key 'clock_hz'" in msg


def test_missing_memory_key(write):
    p = write(edited("    capacity_bytes: 1048576\n", ""))
    msg = error_of(p)
    assert msg.startswith(f"{p}:{LINE['hbm:']}: memories.hbm.capacity_bytes: missing required key")


def test_wrong_type(write):
    p = write(edited("rows: 8", "rows: abc"))
    msg = error_of(p)
    assert msg.startswith(f"{p}:{LINE['rows: 8']}: units.sa.rows: expected ")
    assert "integer" in msg and msg.endswith("found 'abc'")


def test_boolean_is_not_a_number(write):
    p = write(edited("rows: 8", "rows: true"))
    msg = error_of(p)
    assert msg == f"{p}:{LINE['rows: 8']}: units.sa.rows: expected a number, found the boolean true"


def test_fractional_integer_is_rejected(write):
    msg = error_of(write(edited("rows: 8", "rows: 8.5")))
    assert "units.sa.rows" in msg and "8.5" in msg


@pytest.mark.parametrize("old,new,key,found", [
    ("rows: 8", "rows: 0", "units.sa.rows", "0"),
    ("cols: 4", "cols: -4", "units.sa.cols", "-4"),
    ("capacity_bytes: 65536", "capacity_bytes: 0", "memories.spm.capacity_bytes", "0"),
    ("clock_hz: 1.0e+9", "clock_hz: -1.0e+9", "clock_hz", "-1000000000.0"),
    ("bandwidth_bytes_per_s: 1.0e+11", "bandwidth_bytes_per_s: 0.0",
     "memories.hbm.bandwidth_bytes_per_s", "0.0"),
])
def test_non_positive_number(write, old, new, key, found):
    p = write(edited(old, new))
    msg = error_of(p)
    assert msg == f"{p}:{LINE[old]}: {key}: expected greater than 0, found {found}"


def test_negative_energy(write):
    p = write(edited("mac_pj: 1.5", "mac_pj: -1.5"))
    msg = error_of(p)
    assert msg.startswith(f"{p}:{LINE['mac_pj: 1.5']}: units.sa.energy.mac_pj: expected ")
    assert "greater than or equal to 0" in msg and "-1.5" in msg


def test_bad_literal_lists_choices(write):
    p = write(edited("dataflow: ws", "dataflow: xs"))
    msg = error_of(p)
    assert msg.startswith(f"{p}:{LINE['dataflow: ws']}: units.sa.dataflow: expected ")
    for choice in ("'os'", "'ws'", "'is'"):
        assert choice in msg
    assert msg.endswith("found 'xs'")


def test_unknown_unit_kind(write):
    p = write(edited("kind: systolic_array", "kind: tensor_core"))
    msg = error_of(p)
    assert msg.startswith(f"{p}:{LINE['kind: systolic_array']}: units.sa.kind: expected one of ")
    assert "systolic_array" in msg and "vector_unit" in msg
    assert msg.endswith("found 'tensor_core'")


def test_unit_without_kind(write):
    msg = error_of(write(edited("    kind: systolic_array\n", "")))
    assert "units.sa.kind" in msg and "systolic_array" in msg and "found None" in msg


def test_unknown_scratchpad_memory(write):
    p = write(edited("scratchpad: spm", "scratchpad: l1"))
    msg = error_of(p)
    assert msg == (f"{p}:{LINE['scratchpad: spm']}: units.sa.scratchpad: expected one of the "
                   "memories (spm, hbm), found 'l1'")


def test_unknown_backing(write):
    p = write(edited("backing: hbm", "backing: ddr"))
    msg = error_of(p)
    assert msg == (f"{p}:{LINE['backing: hbm']}: memories.spm.backing: expected one of the "
                   "memories (spm, hbm), found 'ddr'")


def test_backing_cycle(write):
    p = write(edited("    kind: dram\n", "    kind: dram\n    backing: spm\n"))
    msg = error_of(p)
    assert msg.startswith(f"{p}:{LINE['backing: hbm']}: memories.spm.backing: expected a chain")
    assert "cycle" in msg


def test_self_backing_is_a_cycle(write):
    msg = error_of(write(edited("backing: hbm", "backing: spm")))
    assert "memories.spm.backing" in msg and "cycle through 'spm'" in msg


def test_yaml_syntax_error_names_file_and_line(write):
    p = write(edited("rows: 8", "rows: [8"))
    msg = error_of(p)
    m = re.match(rf"{re.escape(str(p))}:(\d+): expected valid YAML, found a syntax error", msg)
    assert m, msg
    assert LINE["rows: 8"] <= int(m.group(1)) <= LINE["rows: 8"] + 1


def test_yaml_syntax_error_bad_indentation(write):
    p = write("name: x\n  bad: : :\n")
    msg = error_of(p)
    assert msg.startswith(f"{p}:2: expected valid YAML, found a syntax error")


@pytest.mark.parametrize("text,found", [
    ("", "an empty document"),
    ("# only a comment\n", "an empty document"),
    ("- sa\n- vu\n", "a list"),
    ("just text\n", "'just text'"),
])
def test_top_level_must_be_a_mapping(write, text, found):
    p = write(text)
    assert error_of(p) == f"{p}: expected a mapping at the top level, found {found}"


def test_no_units(write):
    text = BASE.split("units:")[0] + "units: {}\nmemories:" + BASE.split("memories:")[1]
    p = write(text)
    assert error_of(p) == f"{p}:{LINE['units:']}: units: expected at least one unit"


def test_several_errors_are_counted(write):
    msg = error_of(write(edited("rows: 8\n    cols: 4", "rows: abc\n    cols: xyz")))
    assert "units.sa.rows" in msg and msg.endswith("(and 1 more error)")


def test_file_not_found(tmp_path):
    p = tmp_path / "missing.yaml"
    assert error_of(p) == f"{p}: design file not found"


def test_unknown_builtin_lists_builtins():
    msg = error_of("no_such_design")
    assert msg.startswith("unknown design 'no_such_design'; built-in designs: ")
    assert "sa128" in msg.split("built-in designs:")[1]


# --------------------------------------------------------------------------- --set
def test_set_int(write):
    d = load_design(write(BASE), ["units.sa.rows=256"])
    assert d.units["sa"].rows == 256
    assert type(d.units["sa"].rows) is int
    assert d.overrides == ("units.sa.rows=256",)
    assert d.resolved["units"]["sa"]["rows"] == 256


def test_set_float_written_without_sign_in_exponent():
    # PyYAML reads "2e9" as a string; the design must still get the float 2e9
    d = load_design("sa128", ["clock_hz=2e9"])
    assert d.clock_hz == 2e9
    assert type(d.clock_hz) is float
    assert d.resolved["clock_hz"] == 2e9 and type(d.resolved["clock_hz"]) is float


def test_set_str_and_float(write):
    d = load_design(write(BASE), ["units.sa.dataflow=os", "memories.hbm.bandwidth_bytes_per_s=5.0e+10"])
    assert d.units["sa"].dataflow == "os"
    assert d.memories["hbm"].bandwidth_bytes_per_s == 5e10
    assert d.bandwidth_bytes_per_cycle["hbm"] == 50.0


def test_set_applies_in_order(write):
    d = load_design(write(BASE), ["units.sa.rows=16", "units.sa.rows=32"])
    assert d.units["sa"].rows == 32


def test_set_may_add_an_allowed_key(write):
    d = load_design(write(BASE), ["units.sa.clock_hz=5e8"])
    assert d.units["sa"].clock_hz == 5e8


def test_set_new_key_that_is_not_allowed(write):
    p = write(BASE)
    msg = error_of(p, ["units.sa.foo=1"])
    assert msg.startswith(f"{p} (--set units.sa.foo=1): units.sa.foo: unknown key 'foo'")
    assert "rows" in msg


def test_set_bad_value_points_at_the_override(write):
    p = write(BASE)
    msg = error_of(p, ["units.sa.rows=abc"])
    assert msg.startswith(f"{p} (--set units.sa.rows=abc): units.sa.rows: expected ")
    assert msg.endswith("found 'abc'")


def test_set_bad_literal(write):
    msg = error_of(write(BASE), ["units.sa.dataflow=xs"])
    assert "--set units.sa.dataflow=xs" in msg and "'ws'" in msg and "'xs'" in msg


def test_set_missing_intermediate_key_names_available_keys(write):
    p = write(BASE)
    msg = error_of(p, ["units.xx.rows=1"])
    assert msg == (f"--set units.xx.rows=1: {p} has no key 'xx' under units "
                   "(keys there: sa)")
    msg = error_of(p, ["memories.spm.energy.x.y=1"])
    assert "no key 'x' under memories.spm.energy" in msg
    assert "read_pj_per_byte, write_pj_per_byte" in msg


def test_set_through_a_scalar(write):
    msg = error_of(write(BASE), ["units.sa.rows.x=3"])
    assert "--set units.sa.rows.x=3" in msg and "units.sa.rows" in msg and "not a mapping" in msg


@pytest.mark.parametrize("text,needle", [
    ("foo", "--set 'foo': expected path.to.key=value"),
    ("=3", "--set '=3': expected path.to.key=value"),
    ("units..rows=3", "non-empty key path"),
    ("units.sa.rows=[1", "not valid YAML"),
])
def test_malformed_set(write, text, needle):
    assert needle in error_of(write(BASE), [text])
