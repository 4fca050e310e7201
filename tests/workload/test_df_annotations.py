"""Tags and repeated bodies on cascades: validation, queries and the YAML round trip."""

import pytest

from dataflow import Cascade, CascadeError, FormatError, Repeat

LINES = ["H[s,e] = X[s,d] * W1[d,e]", "Y[s,d] = H[s,d] + X[s,d]", "Z[s] = sum(Y[s,d])"]
RANKS = {"s": 4, "d": 3, "e": 3}


def make(**kw):
    return Cascade.from_text(LINES, RANKS, name="blocks", **kw)


def test_tags_and_repeats_are_queryable_and_round_trip():
    c = make(tags={"Y": {"role": "residual", "degree": 2}},
             repeats=[Repeat("layers", "H", "Y", 12)])
    assert c.tag("Y", "role") == "residual" and c.tag("H", "role", "-") == "-"
    assert c.multiplicity("H") == 12 and c.multiplicity("Z") == 1
    assert c.repeat_body(c.repeats[0]) == ("H", "Y")
    back = Cascade.from_yaml(c.to_yaml())
    assert back == c and back.tags["Y"]["degree"] == 2
    assert back != make()          # annotations are part of a cascade's identity
    assert c.with_ranks(s=8).repeats == c.repeats


@pytest.mark.parametrize("kw,message", [
    ({"tags": {"Q": {"role": "x"}}}, "tags.Q: no einsum named 'Q'"),
    ({"tags": {"H": {"role": True}}}, "tags.H.role: expected a string or integer"),
    ({"repeats": [Repeat("l", "Y", "H", 2)]}, "first einsum 'Y' comes after last einsum 'H'"),
    ({"repeats": [Repeat("l", "H", "Q", 2)]}, "no einsum named 'Q'"),
    ({"repeats": [Repeat("l", "H", "Y", 0)]}, "count must be a positive integer"),
    ({"repeats": [Repeat("a", "H", "Y", 2), Repeat("b", "Y", "Z", 2)]},
     "einsum 'Y' is already in repeat 'a'"),
])
def test_bad_annotations_are_rejected(kw, message):
    with pytest.raises(CascadeError, match=message.replace("(", r"\(")):
        make(**kw)


def test_yaml_annotation_errors_name_file_and_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("ranks: {s: 4}\neinsums:\n  - Y[s] = X[s] * 2\n"
                    "repeats:\n  - {name: l, first: Y, last: Y, count: -1}\n")
    with pytest.raises(FormatError, match=r"c.yaml:5: repeats\[0\].count"):
        Cascade.from_yaml(path)
