"""Design-file description of a DRAM device (HBM): organization, timing and command energy.

A ``kind: dram`` memory may carry a ``dram:`` block; with it the memory's bandwidth is derived
from the device (and checked against ``bandwidth_bytes_per_s``), streaming efficiency comes from
the DRAM timing model (:mod:`archsim.units.hbm`), and bank-level PIM units can sit in it::

    dram:
      organization: {channels: 32, bank_groups: 4, banks_per_group: 8, rows: 32768,
                     row_bytes: 1024, bus_bits: 128, burst_length: 4, tck_s: 1.0e-9}
      timing: {cl: 14, trcd: 14, trp: 14, tras: 34, trrd_s: 4, trrd_l: 6, tfaw: 30, tccd_s: 1,
               tccd_l: 2, twr: 16, trtp_s: 4, trtp_l: 6, trfc: 260, trefi: 3900}
      energy: {act_pj: ..., pre_pj: ..., rd_pj: ..., wr_pj: ..., ref_pj: ...}

Every timing is in cycles of ``tck_s``. Energies are per command (``rd_pj`` / ``wr_pj`` per
burst of ``access_bytes``).
"""
from __future__ import annotations

from pydantic import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, model_validator

from archsim.units.base import StrictModel


class DramOrganization(StrictModel):
    """Geometry of the device: how many channels, banks and rows, and the data bus."""

    channels: PositiveInt
    pseudo_channels: PositiveInt = 1
    bank_groups: PositiveInt
    banks_per_group: PositiveInt
    rows: PositiveInt
    row_bytes: PositiveInt
    bus_bits: PositiveInt
    burst_length: PositiveInt
    data_rate: PositiveInt = 2          # transfers per tCK (2: DDR)
    tck_s: PositiveFloat

    @property
    def banks(self) -> int:
        """Banks per (pseudo-)channel."""
        return self.bank_groups * self.banks_per_group

    @property
    def units(self) -> int:
        """Independent command/data interfaces: channels x pseudo-channels."""
        return self.channels * self.pseudo_channels

    @property
    def access_bytes(self) -> int:
        """Bytes one RD/WR burst moves on a (pseudo-)channel."""
        return self.bus_bits // self.pseudo_channels * self.burst_length // 8

    @property
    def burst_cycles(self) -> int:
        """tCK cycles one burst occupies the data bus (burst_length / data_rate)."""
        return max(self.burst_length // self.data_rate, 1)

    @property
    def capacity_bytes(self) -> int:
        """Total capacity: units x banks x rows x row bytes."""
        return self.units * self.banks * self.rows * self.row_bytes

    @property
    def peak_bytes_per_s(self) -> float:
        """Peak external bandwidth of the whole device."""
        return self.units * self.access_bytes / (self.burst_cycles * self.tck_s)


class DramTiming(StrictModel):
    """JEDEC-style timing parameters in tCK cycles."""

    cl: PositiveInt                     # read latency (RD -> first data)
    cwl: NonNegativeInt = 0             # write latency (WR -> first data)
    trcd: PositiveInt                   # ACT -> RD/WR on that bank
    trp: PositiveInt                    # PRE -> ACT on that bank
    tras: PositiveInt                   # ACT -> PRE on that bank
    trrd_s: PositiveInt                 # ACT -> ACT, different bank groups
    trrd_l: PositiveInt                 # ACT -> ACT, same bank group
    tfaw: PositiveInt                   # at most 4 ACTs in any tfaw window
    tccd_s: PositiveInt                 # column command -> column command, different bank groups
    tccd_l: PositiveInt                 # column command -> column command, same bank group
    twr: PositiveInt                    # end of write data -> PRE
    trtp_s: PositiveInt                 # RD -> PRE (different bank group timing)
    trtp_l: PositiveInt                 # RD -> PRE (same bank group timing)
    twtr_s: NonNegativeInt = 0          # end of write data -> RD, different bank groups
    twtr_l: NonNegativeInt = 0          # end of write data -> RD, same bank group
    trfc: PositiveInt                   # REF -> next command (all banks)
    trefi: PositiveInt                  # average interval between REF commands

    @model_validator(mode="after")
    def _consistent(self):
        if self.tras < self.trcd:
            raise ValueError(f"tras ({self.tras}) must be at least trcd ({self.trcd})")
        if self.trefi <= self.trfc:
            raise ValueError(f"trefi ({self.trefi}) must exceed trfc ({self.trfc})")
        return self


class DramEnergy(StrictModel):
    """Energy per command in pJ (RD/WR: per burst)."""

    act_pj: NonNegativeFloat
    pre_pj: NonNegativeFloat
    rd_pj: NonNegativeFloat
    wr_pj: NonNegativeFloat
    ref_pj: NonNegativeFloat


class DramSpec(StrictModel):
    """A DRAM device: organization, timing, energy per command."""

    organization: DramOrganization
    timing: DramTiming
    energy: DramEnergy


class PimGeometry(StrictModel):
    """What a bank-level PIM adds to each bank (see :mod:`archsim.units.pim`).

    ``multipliers_per_bank`` elements of the open row are multiplied per MAC command, against
    the same elements of the vector held in the channel's global buffer; a group activate
    (``GACT``) opens one row in ``gact_banks`` banks with one command.
    """

    multipliers_per_bank: PositiveInt
    element_bytes: PositiveInt = 2
    gact_banks: PositiveInt = 4
    row_buffers: int = 1                # 1: blocked (Newton-style); 2: NeuPIMs dual row buffers
    global_buffer_bytes: PositiveInt = 1024
    # How many activates a GACT counts as in the tFAW window. tFAW is the DRAM's activation
    # power budget; a group activate opens ``gact_banks`` rows and costs ``gact_banks`` ACTs
    # (neupims.md), so by default it spends that much of the budget. 1: a device whose power
    # delivery is sized for group activates (one command, one window entry).
    gact_faw_weight: PositiveInt | None = None

    @property
    def faw_weight(self) -> int:
        """Activates a GACT counts as in the tFAW window."""
        return self.gact_banks if self.gact_faw_weight is None else self.gact_faw_weight

    @model_validator(mode="after")
    def _rb(self):
        if self.row_buffers not in (1, 2):
            raise ValueError(f"row_buffers must be 1 (blocked) or 2 (dual), found {self.row_buffers}")
        return self
