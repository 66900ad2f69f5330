"""Candidate modes: gpus.json statuses, DCM's rules (NPS4 only with CPX, NPS2 only with DPX, no TPX)."""

from __future__ import annotations

import pytest

import sizing
from partitioner import AdvisorInputError, Mode, Trust
from partitioner.modes import candidate_options, existing_option


def _modes(product: str, trust: Trust = Trust.DRIVER, current: Mode | None = None) -> list[str]:
    return [str(o.mode) for o in candidate_options(product, current, trust)]


def test_mi300x_candidates_follow_amds_rules() -> None:
    assert _modes("MI300X") == ["SPX/NPS1", "DPX/NPS2", "QPX/NPS1", "CPX/NPS4"]


def test_validated_only_keeps_amds_matrix() -> None:
    assert _modes("MI300X", Trust.VALIDATED) == ["SPX/NPS1", "DPX/NPS2", "CPX/NPS4"]


def test_current_memory_mode_is_kept_when_it_is_a_candidate() -> None:
    assert "CPX/NPS1" in _modes("MI300X", current=Mode("CPX", "NPS1"))
    assert "CPX/NPS4" not in _modes("MI300X", current=Mode("CPX", "NPS1"))


@pytest.mark.parametrize("product", [p.name for p in sizing.GEOMETRY.products])
@pytest.mark.parametrize("trust", list(Trust))
def test_every_candidate_is_one_dcm_accepts(product: str, trust: Trust) -> None:
    try:
        options = candidate_options(product, None, trust)
    except AdvisorInputError:
        assert trust is Trust.VALIDATED  # only possible when nothing is validated
        return
    gpu = sizing.GEOMETRY.product(product)
    for option in options:
        compute, memory = option.mode.compute_mode, option.mode.memory_mode
        assert compute in ("SPX", "DPX", "QPX", "CPX")
        assert memory != "NPS4" or compute == "CPX"
        assert memory != "NPS2" or compute == "DPX"
        assert gpu.mode(compute, memory) is not None
        assert trust.allows(option.status)
    assert len({o.mode.compute_mode for o in options}) == len(options)  # one memory mode per compute mode


def test_unverified_modes_need_the_lowest_trust() -> None:
    assert "CPX/NPS4" not in _modes("MI308X")
    assert "CPX/NPS1" in _modes("MI308X")
    assert "CPX/NPS4" in _modes("MI308X", Trust.UNVERIFIED, current=Mode("CPX", "NPS4"))


def test_mi300a_tpx_is_never_chosen_dcm_cannot_apply_it() -> None:
    assert _modes("MI300A") == ["SPX/NPS1", "CPX/NPS1"]


def test_invalid_mode_for_a_product_names_the_valid_ones() -> None:
    with pytest.raises(AdvisorInputError, match=r"MI325X has no partition mode DPX/NPS2 \(valid: SPX/NPS1"):
        existing_option("MI325X", Mode("DPX", "NPS2"))


def test_unknown_product_names_the_known_ones() -> None:
    with pytest.raises(AdvisorInputError, match=r"unknown GPU product 'MI999X' \(known: MI300X"):
        candidate_options("MI999X", None, Trust.DRIVER)
