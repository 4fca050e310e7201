"""Design files: YAML -> validated, immutable specs.

A design file describes hardware only (never a workload)::

    name: npu
    clock_hz: 1.0e9            # reference clock: every cycle count in a Result is of this clock
    units:                     # blocks that execute einsums; `kind` selects the unit model
      sa: {kind: systolic_array, rows: 128, cols: 128, dataflow: ws, scratchpad: spm, ...}
    memories:                  # storage levels; `backing` is the next level out
      spm: {kind: sram, capacity_bytes: 2097152, bandwidth_bytes_per_s: 4.0e12, backing: hbm, ...}
      hbm: {kind: dram, capacity_bytes: 34359738368, bandwidth_bytes_per_s: 1.024e12, ...}

Rules: duplicate keys and unknown keys are errors; every error names the file (and line), the
key path and what was expected. Units are part of every key name (``_hz``, ``_bytes``,
``_bytes_per_s``, ``_pj``). ``--set path.to.key=value`` overrides any key before validation.
"""
from __future__ import annotations

import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import yaml
from pydantic import (
    BaseModel,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from archsim.errors import DesignError
from archsim.units import UNIT_KINDS, StrictModel, UnitModel, UnitSpec
from archsim.units.dram_spec import DramSpec
from dataflow.errors import describe_value
from dataflow.yamlio import FormatError, load_yaml_strict


class MemoryEnergy(StrictModel):
    """Energy per byte moved."""

    read_pj_per_byte: NonNegativeFloat
    write_pj_per_byte: NonNegativeFloat


class MemorySpec(StrictModel):
    """A storage level. ``backing`` names the level its data comes from (None: outermost)."""

    kind: Literal["sram", "dram"]
    capacity_bytes: PositiveInt
    bandwidth_bytes_per_s: PositiveFloat
    backing: str | None = None
    energy: MemoryEnergy
    description: str = ""
    dram: DramSpec | None = None
    efficiency: float | None = None

    @model_validator(mode="after")
    def _efficiency(self):
        if self.efficiency is not None:
            if not 0 < self.efficiency <= 1:
                raise ValueError(f"efficiency must be in (0, 1], found {self.efficiency}")
            if self.dram is not None:
                raise ValueError("give either efficiency or a dram block (which derives the "
                                 "streaming efficiency from the DRAM timing), not both")
        return self

    @model_validator(mode="after")
    def _device_consistent(self):
        if self.dram is None:
            return self
        if self.kind != "dram":
            raise ValueError(f"a dram block needs kind 'dram', found kind {self.kind!r}")
        org = self.dram.organization
        peak = org.peak_bytes_per_s
        if abs(peak - self.bandwidth_bytes_per_s) > 0.01 * peak:
            raise ValueError(
                f"bandwidth_bytes_per_s {self.bandwidth_bytes_per_s:.6g} disagrees with the dram "
                f"block's peak {peak:.6g} (units x access_bytes / (burst_cycles x tck_s)); "
                f"expected {peak:.6g}")
        if self.capacity_bytes > org.capacity_bytes:
            raise ValueError(f"capacity_bytes {self.capacity_bytes} exceeds the dram block's "
                             f"{org.capacity_bytes} (channels x banks x rows x row_bytes)")
        return self


class InterconnectSpec(StrictModel):
    """Device-to-device links used by tensor, pipeline and expert parallelism (per device, per
    direction). ``devices_per_node``: devices this link joins (``interconnect``: a node's
    NVLink domain; ``network``: unbounded). ``allreduce``: the algorithm its link unit runs
    all-reduces with (:func:`archsim.core.physics.allreduce`): ``ring`` (default, as the
    Duplex reference simulator, ../shared/reference/duplex.md), ``one_shot``, or ``auto``
    (the faster of the two per message)."""

    bandwidth_bytes_per_s: PositiveFloat
    latency_s: NonNegativeFloat = 0.0
    energy_pj_per_byte: NonNegativeFloat = 0.0
    devices_per_node: PositiveInt | None = None
    allreduce: Literal["ring", "one_shot", "auto"] = "ring"


class ServingPolicy(StrictModel):
    """How an iteration of LLM serving is run on this design (see :mod:`archsim.experiments.serving`).

    Two styles:

    * NPU + bank PIM (NeuPIMs): ``npu``: the unit running GEMMs; ``vector``: softmax, norms
      and element-wise ops; ``attention``: the unit running decode attention GEMVs (a PIM unit,
      or ``npu``); ``sub_batch_interleaving``: NeuPIMs' two sub-batches overlapping NPU and
      PIM work.
    * xPU + PIM (Duplex): ``xpu``: a ``gpu_roofline`` unit; ``pim``: a ``logic_pim`` or
      ``bank_pim`` unit in the same memory (none: the xPU alone); ``placement``: ``fastest``
      (each operation on the processor that finishes it first), ``xpu`` or ``pim``;
      ``expert_coprocessing`` and ``attention_coprocessing``: Duplex's concurrent use of both
      processors within an MoE layer and between prefill and decode attention.

    A design with one ``gpu_roofline`` unit and no policy runs everything on it.
    """

    npu: str | None = None
    vector: str | None = None
    attention: str | None = None
    sub_batch_interleaving: bool | Literal["auto"] = False
    xpu: str | None = None
    pim: str | None = None
    placement: Literal["fastest", "xpu", "pim"] = "fastest"
    expert_coprocessing: bool = False
    attention_coprocessing: bool = False

    @model_validator(mode="after")
    def _one_style(self):
        npu_keys = [k for k in ("npu", "vector", "attention") if getattr(self, k) is not None]
        if self.xpu is not None:
            if npu_keys:
                raise ValueError(f"give either xpu (+ pim) or npu, vector and attention, not "
                                 f"both (found xpu and {', '.join(npu_keys)})")
            if self.sub_batch_interleaving:
                raise ValueError("sub_batch_interleaving needs the npu style (npu, vector, "
                                 "attention)")
            if self.pim is None and self.placement == "pim":
                raise ValueError("placement 'pim' needs a pim unit")
        else:
            if len(npu_keys) != 3:
                missing = [k for k in ("npu", "vector", "attention") if k not in npu_keys]
                raise ValueError(f"expected xpu, or all of npu, vector and attention (missing "
                                 f"{', '.join(missing)})")
            extra = [k for k in ("pim",) if getattr(self, k) is not None]
            if extra or self.expert_coprocessing or self.attention_coprocessing:
                raise ValueError("pim, expert_coprocessing and attention_coprocessing need the "
                                 "xpu style")
        return self

    @property
    def style(self) -> str:
        """``npu`` (NeuPIMs style) or ``xpu`` (Duplex style)."""
        return "xpu" if self.xpu is not None else "npu"


class SpatialPolicy(StrictModel):
    """How attention and encoder layers run on a spatial-array design (see
    :mod:`archsim.families.spatial`): FuseMax, FLAT and the unfused baseline differ only here and in
    their units.

    ``array2d`` / ``array1d``: the ``pe_array`` units; ``buffer``: the on-chip global buffer
    (an ``sram`` memory); ``dram``: off-chip memory. ``attention``: the attention cascade run
    (``1pass``, ``3pass`` or ``deferred``). ``array2d_runs``: which einsums the binding
    puts on the 2D array: ``tile`` (every einsum over a whole (m, p) tile, as FuseMax binds
    them) or ``mac`` (only multiply-accumulate einsums, as FLAT). ``schedule``: ``pipelined``
    (software-pipelined epochs: both arrays work on different epochs at once), ``tile``
    (tile-at-a-time: an epoch starts when the previous one is done) or ``phased`` (each run of
    einsums on one array is a separate phase with DRAM round trips, the unfused baseline).
    ``intermediates``: where intermediates spanning a whole key fiber live: ``auto`` (on chip
    when they fit, the rest spilled to DRAM) or ``dram``.
    """

    array2d: str
    array1d: str
    buffer: str
    dram: str
    attention: Literal["1pass", "3pass", "deferred"]
    array2d_runs: Literal["tile", "mac"]
    schedule: Literal["pipelined", "tile", "phased"]
    intermediates: Literal["auto", "dram"] = "auto"


class LaunchSpec(StrictModel):
    """How a kernel (a section) is launched on an RDU: ``orchestration`` by ``hardware`` (an
    on-chip orchestrator, ``hardware_s`` per launch) or ``software`` (the host runtime,
    ``software_s``); a kernel that differs from the one configured also loads its program,
    ``program_bytes_per_unit`` for every PCU and PMU it uses, from HBM."""

    orchestration: Literal["hardware", "software"]
    hardware_s: NonNegativeFloat
    software_s: NonNegativeFloat
    program_bytes_per_unit: NonNegativeFloat


class RduPolicy(StrictModel):
    """The dataflow-RDU part of a design (see :mod:`archsim.families.rdu`): which unit holds the PCUs,
    which memories are the SRAM (PMUs), HBM and DDR tiers, and the figures of PMUs, on-chip
    network, streaming tiles, the DDR -> HBM copy path and kernel launches."""

    pcu: str
    sram: str
    hbm: str
    ddr: str | None = None
    pmus: PositiveInt
    pmu_bandwidth_bytes_per_cycle: PositiveFloat
    network_bandwidth_bytes_per_cycle: PositiveFloat
    tile_rows: PositiveInt
    ddr_to_hbm_bytes_per_s: PositiveFloat
    launch: LaunchSpec


class DesignFile(StrictModel):
    """Top level of a design file. Unit entries are validated by their ``kind``'s spec."""

    name: str
    description: str = ""
    clock_hz: PositiveFloat
    units: dict[str, dict[str, Any]]
    memories: dict[str, MemorySpec]
    interconnect: InterconnectSpec | None = None
    network: InterconnectSpec | None = None
    serving: ServingPolicy | None = None
    spatial: SpatialPolicy | None = None
    rdu: RduPolicy | None = None
    references: list[str] = []


# --------------------------------------------------------------------------- Design
@dataclass(frozen=True)
class Design:
    """A validated design: units and memories, plus where it came from.

    Attributes:
        name: design name (from the file).
        clock_hz: reference clock; cycle counts in results are in this clock.
        units: unit name -> validated spec (a subclass of :class:`UnitSpec`).
        memories: memory name -> :class:`MemorySpec`.
        source: the file it was read from.
        overrides: the ``--set`` overrides applied, in order.
        resolved: the design as plain data after overrides (what ``designs show`` prints).
    """

    name: str
    description: str
    clock_hz: float
    units: Mapping[str, UnitSpec]
    memories: Mapping[str, MemorySpec]
    source: str
    overrides: tuple[str, ...] = ()
    resolved: Mapping[str, Any] = field(default_factory=dict, compare=False)
    references: tuple[str, ...] = ()
    interconnect: InterconnectSpec | None = None
    serving: ServingPolicy | None = None
    fidelity: str = "analytical"
    network: InterconnectSpec | None = None
    spatial: SpatialPolicy | None = None
    rdu: RduPolicy | None = None

    @cached_property
    def hash(self) -> str:
        """First 12 hex digits of the SHA-256 of the resolved design (identity in results)."""
        canon = json.dumps(_jsonable(self.resolved), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:12]

    @cached_property
    def unit_models(self) -> dict[str, UnitModel]:
        """Unit name -> timing/energy model instance."""
        return {n: UNIT_KINDS[s.kind](n, s, self) for n, s in self.units.items()}

    @cached_property
    def dram_models(self) -> dict[str, Any]:
        """Memory name -> :class:`archsim.units.hbm.HbmModel` for memories with a dram block."""
        from archsim.units.hbm import HbmModel

        return {n: HbmModel(m.dram) for n, m in self.memories.items() if m.dram is not None}

    def memory_efficiency(self, name: str) -> float:
        """Fraction of a memory's peak bandwidth that long streams achieve: derived from the
        DRAM timing model when the memory has a dram block, else its ``efficiency`` (1.0 when
        not given)."""
        m = self.memories[name]
        if m.dram is not None:
            return float(self.dram_models[name].streaming_efficiency("analytical"))
        return 1.0 if m.efficiency is None else m.efficiency

    @cached_property
    def bandwidth_bytes_per_cycle(self) -> dict[str, float]:
        """Memory name -> achieved bandwidth (peak x :meth:`memory_efficiency`) in bytes per
        reference-clock cycle."""
        return {n: m.bandwidth_bytes_per_s * self.memory_efficiency(n) / self.clock_hz
                for n, m in self.memories.items()}

    def outermost_memory(self, level: str) -> str:
        """Follow ``backing`` from ``level`` to the outermost memory level."""
        while self.memories[level].backing is not None:
            level = self.memories[level].backing
        return level

    def to_yaml(self) -> str:
        """The resolved design as YAML text."""
        return yaml.safe_dump(_jsonable(self.resolved), sort_keys=False)


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


# --------------------------------------------------------------------------- lookup
def builtin_designs_dir() -> Path:
    """Directory of the built-in design files (installed package data, or the checkout)."""
    checkout = Path(__file__).resolve().parent.parent / "designs"
    try:
        d = resources.files("archsim.designs")
    except ModuleNotFoundError:  # a checkout that is not installed
        return checkout
    return Path(str(d)) if d.joinpath("npu.yaml").is_file() else checkout


def builtin_designs() -> list[str]:
    """Names of the built-in designs."""
    return sorted(p.stem for p in builtin_designs_dir().glob("*.yaml"))


def resolve_design_path(name_or_path: str | Path) -> Path:
    """Path of a design given as a built-in name or a file path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists() or "/" in str(name_or_path):
        if not p.is_file():
            raise DesignError(f"{p}: design file not found")
        return p
    cand = builtin_designs_dir() / f"{name_or_path}.yaml"
    if not cand.is_file():
        raise DesignError(f"unknown design {str(name_or_path)!r}; built-in designs: "
                          f"{', '.join(builtin_designs())} (or give a path to a .yaml file)")
    return cand


# --------------------------------------------------------------------------- overrides
def parse_override(text: str) -> tuple[tuple[str, ...], Any]:
    """Split ``a.b.c=value`` into a key path and a YAML-parsed value."""
    if "=" not in text:
        raise DesignError(f"--set {text!r}: expected path.to.key=value")
    key, _, raw = text.partition("=")
    path = tuple(k.strip() for k in key.strip().split("."))
    if not key.strip() or any(not k for k in path):
        raise DesignError(f"--set {text!r}: expected path.to.key=value with a non-empty key path")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise DesignError(f"--set {text!r}: value is not valid YAML ({exc.problem})") from None
    return path, value


def apply_overrides(data: dict, overrides: Sequence[str], source: str) -> dict[tuple, str]:
    """Apply ``--set`` overrides to ``data`` in place.

    Returns key path -> the override text, so errors can point at the override. Every key but
    the last must exist; the last may be new (validation then says whether it is allowed).
    """
    origin: dict[tuple, str] = {}
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for i, k in enumerate(path[:-1]):
            if not isinstance(node, dict) or k not in node:
                where = ".".join(path[:i]) or "the top level"
                keys = ", ".join(map(str, node)) if isinstance(node, dict) else "(not a mapping)"
                raise DesignError(f"--set {text}: {source} has no key {k!r} under {where} "
                                  f"(keys there: {keys})")
            node = node[k]
        if not isinstance(node, dict):
            raise DesignError(f"--set {text}: {'.'.join(path[:-1])} in {source} is not a mapping")
        node[path[-1]] = value
        origin[path] = text
    return origin


# --------------------------------------------------------------------------- errors
def _describe(tp: Any) -> str:
    """Short human description of a type annotation."""
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "a mapping with keys " + ", ".join(tp.model_fields)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _model_at(root: type[BaseModel], loc: Sequence[Any], data: Any) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``loc`` (None if not a model)."""
    cls: Any = root
    node = data
    for part in loc:
        if cls is DesignFile and part == "units":
            cls, node = "units", node.get("units", {}) if isinstance(node, dict) else {}
            continue
        if cls == "units":
            entry = node.get(part, {}) if isinstance(node, dict) else {}
            kind = entry.get("kind") if isinstance(entry, dict) else None
            cls, node = (UNIT_KINDS[kind].spec_class if kind in UNIT_KINDS else None), entry
            continue
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            f = cls.model_fields.get(str(part))
            if f is None:
                return None
            ann = f.annotation
            if typing.get_origin(ann) in (typing.Union, types.UnionType):
                models = [a for a in typing.get_args(ann)
                          if isinstance(a, type) and issubclass(a, BaseModel)]
                ann = models[0] if len(models) == 1 else ann
            node = node.get(part) if isinstance(node, dict) else None
            args = typing.get_args(ann)
            if typing.get_origin(ann) is dict and len(args) == 2:
                cls = ("dict", args[1])
            else:
                cls = ann
            continue
        if isinstance(cls, tuple) and cls[0] == "dict":
            cls = cls[1]
            node = node.get(part) if isinstance(node, dict) else None
            continue
        return None
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _ordered(errors: list[dict]) -> list[dict]:
    """Unknown keys first: a misspelt key also makes the intended key 'missing'."""
    return sorted(errors, key=lambda e: e["type"] != "extra_forbidden")


def _format_pydantic(err: dict, root: type[BaseModel], data: Any, prefix: tuple) -> tuple:
    """(key path, message) for one pydantic error."""
    loc = prefix + tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    etype = err["type"]
    found = err.get("input")
    if etype == "extra_forbidden":
        parent = _model_at(root, loc[:-1], data)
        allowed = ", ".join(parent.model_fields) if parent else "?"
        return loc, f"unknown key {loc[-1]!r}; expected one of: {allowed}"
    if etype == "missing":
        parent = _model_at(root, loc[:-1], data)
        want = ""
        if parent is not None and str(loc[-1]) in parent.model_fields:
            want = f" ({_describe(parent.model_fields[str(loc[-1])].annotation)})"
        return loc, f"missing required key {loc[-1]!r}{want}"
    msg = err["msg"]
    if msg.startswith("Input should be "):
        msg = "expected " + msg[len("Input should be "):]
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    else:
        msg = "expected: " + msg[0].lower() + msg[1:]
    return loc, f"{msg}, found {found!r}"


def _where(source: str, lines: Mapping[tuple, int], origin: Mapping[tuple, str], path: tuple) -> str:
    for i in range(len(path), 0, -1):
        if tuple(path[:i]) in origin:
            return f"{source} (--set {origin[tuple(path[:i])]})"
    for i in range(len(path), -1, -1):
        ln = lines.get(tuple(path[:i]))
        if ln:
            return f"{source}:{ln}"
    return source


def _raise(source: str, lines, origin, path: tuple, message: str, more: int = 0) -> None:
    key = ".".join(str(p) for p in path) or "(top level)"
    extra = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    raise DesignError(f"{_where(source, lines, origin, path)}: {key}: {message}{extra}")


def _canonical_numbers(raw: Any, valid: Any, path: tuple, on_bool) -> Any:
    """Put the validated number in place of the number as written (PyYAML reads ``1e9`` and
    ``1.0e9`` as strings; ``1000000000`` is an int where a float is expected), so equal designs
    resolve (and hash) equally; call ``on_bool(path, value)`` for a boolean given where a number
    is expected (pydantic would silently take ``true`` as 1). Mutates and returns ``raw``."""
    if isinstance(raw, dict) and isinstance(valid, dict):
        for k in raw:
            if k in valid:
                raw[k] = _canonical_numbers(raw[k], valid[k], path + (k,), on_bool)
        return raw
    if isinstance(raw, list) and isinstance(valid, (list, tuple)) and len(raw) == len(valid):
        return [_canonical_numbers(r, v, path + (i,), on_bool)
                for i, (r, v) in enumerate(zip(raw, valid))]
    if isinstance(valid, (int, float)) and not isinstance(valid, bool):
        if isinstance(raw, bool):
            on_bool(path, raw)
        elif isinstance(raw, (str, int, float)):
            return valid
    return raw


# --------------------------------------------------------------------------- loading
def load_design(name_or_path: str | Path, overrides: Sequence[str] = ()) -> Design:
    """Load, override and validate a design.

    Args:
        name_or_path: a built-in design name (``npu``) or a path to a YAML file.
        overrides: ``path.to.key=value`` strings applied before validation.

    Raises:
        DesignError: with file, line, key path and what was expected.
    """
    if isinstance(name_or_path, Design):
        if overrides:
            return design_from_data(dict(name_or_path.resolved), name_or_path.source, overrides)
        return name_or_path
    path = resolve_design_path(name_or_path)
    try:
        data, lines = load_yaml_strict(path, filename=str(path), with_lines=True)
    except FormatError as exc:
        raise DesignError(str(exc)) from None
    return design_from_data(data, str(path), overrides, lines)


def design_from_data(data: Any, source: str = "<design>", overrides: Sequence[str] = (),
                     lines: Mapping[tuple, int] | None = None) -> Design:
    """Validate plain design data (as read from YAML). See :func:`load_design`."""
    import copy

    lines = lines or {}
    if not isinstance(data, dict):
        found = "an empty document" if data is None else describe_value(data)
        raise DesignError(f"{source}: expected a mapping at the top level, found {found}")
    data = copy.deepcopy(data)
    origin = apply_overrides(data, overrides, source)
    try:
        top = DesignFile.model_validate(data)
    except ValidationError as exc:
        errs = _ordered(exc.errors())
        path, msg = _format_pydantic(errs[0], DesignFile, data, ())
        _raise(source, lines, origin, path, msg, len(errs) - 1)
    units: dict[str, UnitSpec] = {}
    for uname, entry in top.units.items():
        kind = entry.get("kind")
        if kind not in UNIT_KINDS:
            _raise(source, lines, origin, ("units", uname, "kind"),
                   f"expected one of {', '.join(sorted(UNIT_KINDS))}, found {kind!r}")
        try:
            units[uname] = UNIT_KINDS[kind].spec_class.model_validate(entry)
        except ValidationError as exc:
            errs = _ordered(exc.errors())
            path, msg = _format_pydantic(errs[0], DesignFile, data, ("units", uname))
            _raise(source, lines, origin, path, msg, len(errs) - 1)
    if not units:
        _raise(source, lines, origin, ("units",), "expected at least one unit")
    valid = top.model_dump()
    valid["units"] = {n: u.model_dump() for n, u in units.items()}
    _canonical_numbers(data, valid, (), lambda path, raw: _raise(
        source, lines, origin, path, f"expected a number, found {describe_value(raw)}"))
    mems = dict(top.memories)
    if not mems:
        _raise(source, lines, origin, ("memories",), "expected at least one memory level")
    for mname, m in mems.items():
        if m.backing is not None and m.backing not in mems:
            _raise(source, lines, origin, ("memories", mname, "backing"),
                   f"expected one of the memories ({', '.join(mems)}), found {m.backing!r}")
        seen, cur = {mname}, m.backing
        while cur is not None:
            if cur in seen:
                _raise(source, lines, origin, ("memories", mname, "backing"),
                       f"expected a chain ending at an outermost memory, found a cycle through "
                       f"{cur!r}")
            seen.add(cur)
            cur = mems[cur].backing
    if top.serving is not None:
        for key in ("npu", "vector", "attention", "xpu", "pim"):
            ref = getattr(top.serving, key)
            if ref is not None and ref not in units:
                _raise(source, lines, origin, ("serving", key),
                       f"expected one of the units ({', '.join(units)}), found {ref!r}")
    if top.spatial is not None:
        for key, pool, what in (("array2d", units, "units"), ("array1d", units, "units"),
                                ("buffer", mems, "memories"), ("dram", mems, "memories")):
            ref = getattr(top.spatial, key)
            if ref not in pool:
                _raise(source, lines, origin, ("spatial", key),
                       f"expected one of the {what} ({', '.join(pool)}), found {ref!r}")
        for key in ("array2d", "array1d"):
            kind = units[getattr(top.spatial, key)].kind
            if kind != "pe_array":
                _raise(source, lines, origin, ("spatial", key),
                       f"expected a unit of kind pe_array, found kind {kind!r}")
    if top.rdu is not None:
        _check_rdu(top.rdu, units, mems, lambda path, msg: _raise(source, lines, origin,
                                                                  ("rdu",) + path, msg))
    links = [n for n, u in units.items() if u.kind == "link"]
    for uname in links:
        section = units[uname].links
        if getattr(top, section) is None:
            _raise(source, lines, origin, ("units", uname, "links"),
                   f"expected a section the design has (a link reads the design's "
                   f"interconnect or network), found {section!r} but no {section!r} section")
    if top.interconnect is not None and not links:
        # the interconnect's collectives run on a unit of their own (archsim.units.link)
        if "link" in units:
            _raise(source, lines, origin, ("units", "link"),
                   "expected a unit of kind link: a design with an interconnect gets a unit "
                   "named 'link' for its collectives; rename this unit")
        units["link"] = UNIT_KINDS["link"].spec_class(kind="link")
    for uname, u in units.items():
        for key in ("scratchpad", "memory"):
            ref = getattr(u, key, None)
            if ref is not None and ref not in mems:
                _raise(source, lines, origin, ("units", uname, key),
                       f"expected one of the memories ({', '.join(mems)}), found {ref!r}")
    return Design(
        name=top.name, description=top.description, clock_hz=top.clock_hz, units=units,
        memories=mems, source=source, overrides=tuple(overrides), resolved=data,
        references=tuple(top.references), interconnect=top.interconnect, serving=top.serving,
        network=top.network, spatial=top.spatial, rdu=top.rdu,
    )


def _check_rdu(rdu: RduPolicy, units, mems, fail) -> None:
    """Cross-references of an ``rdu`` section (``fail(key_path, message)`` raises)."""
    if rdu.pcu not in units:
        fail(("pcu",), f"expected one of the units ({', '.join(units)}), found {rdu.pcu!r}")
    if units[rdu.pcu].kind != "pcu":
        fail(("pcu",), f"expected a unit of kind pcu, found kind {units[rdu.pcu].kind!r}")
    for key, kind in (("sram", "sram"), ("hbm", "dram"), ("ddr", "dram")):
        ref = getattr(rdu, key)
        if ref is None:
            continue
        if ref not in mems:
            fail((key,), f"expected one of the memories ({', '.join(mems)}), found {ref!r}")
        if mems[ref].kind != kind:
            fail((key,), f"expected a memory of kind {kind}, found {ref!r} of kind "
                         f"{mems[ref].kind!r}")
    if rdu.sram == rdu.hbm or (rdu.ddr is not None and rdu.ddr in (rdu.sram, rdu.hbm)):
        fail(("ddr" if rdu.ddr in (rdu.sram, rdu.hbm) else "hbm",),
             "expected three different memories for the sram, hbm and ddr tiers")
