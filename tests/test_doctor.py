"""``urgentbench doctor``: every missing package or asset, the plug-ins needing it, one install command."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from urgentbench.cli import main
from urgentbench.doctor import INSTALL_ALL, diagnose, report
from urgentbench.metrics import METRICS
from urgentbench.metrics.base import Metric, Output
from urgentbench.requirements import PackageRequirement


class _NeedsMissing(Metric):
    """A plug-in metric needing a package that is not installed (and torch, which is)."""

    name: ClassVar[str] = "doctor_probe"
    description: ClassVar[str] = "test"
    category: ClassVar[str] = "non-intrusive"
    needs_reference: ClassVar[bool] = False
    sample_rate: ClassVar[int | None] = None
    version: ClassVar[str] = "1"
    outputs: ClassVar[tuple[Output, ...]] = (Output("doctor_probe", True, "test"),)
    packages: ClassVar[tuple[PackageRequirement, ...]] = (
        PackageRequirement("urgentbench_no_such_module", "pip install urgentbench-no-such-module==1.0"),
        PackageRequirement("numpy", "pip install numpy"),
    )

    def compute(self, estimate, reference, sample_rate, *, transcript=None):
        return {"doctor_probe": float(np.mean(estimate))}


class _NeedsMissingToo(_NeedsMissing):
    name: ClassVar[str] = "doctor_probe2"
    packages: ClassVar[tuple[PackageRequirement, ...]] = (
        PackageRequirement("urgentbench_no_such_module", "pip install urgentbench-no-such-module"),
    )


def test_missing_packages_are_merged_with_their_users_and_one_pinned_command(capsys):
    METRICS.register("doctor_probe", _NeedsMissing, override=True)
    METRICS.register("doctor_probe2", _NeedsMissingToo, override=True)
    try:
        missing = {(m.kind, m.name): m for m in diagnose()}
        probe = missing[("package", "urgentbench_no_such_module")]
        assert probe.needed_by == ["metric doctor_probe", "metric doctor_probe2"]
        assert probe.fix == "pip install urgentbench-no-such-module==1.0"  # the pinned one of the two hints
        assert ("package", "numpy") not in missing  # installed: not listed
        # every entry has a command; assets come with an `urgentbench assets` line (or a training recipe)
        for m in missing.values():
            assert m.fix and m.needed_by
            if m.kind == "asset":
                assert "urgentbench " in m.fix
        assert main(["doctor"]) == 0
        out = capsys.readouterr().out
        assert "urgentbench_no_such_module\n    install: pip install urgentbench-no-such-module==1.0" in out
        assert INSTALL_ALL in out
    finally:
        METRICS.unregister("doctor_probe")
        METRICS.unregister("doctor_probe2")


def test_report_when_nothing_is_missing():
    assert report([]).startswith("Everything")


def test_a_package_imported_without_a_spec_is_available(monkeypatch):
    """A package that swapped its module for a proxy without __spec__ (humanfriendly, imported by ESPnet)."""
    import sys
    import types

    import pytest

    proxy = types.ModuleType("urgentbench_spec_less_module")  # __spec__ is None, as humanfriendly's proxy
    monkeypatch.setitem(sys.modules, proxy.__name__, proxy)
    assert PackageRequirement(proxy.__name__, "pip install x").problem() is None
    pytest.importorskip("humanfriendly")
    assert PackageRequirement("humanfriendly", "pip install humanfriendly").is_available()
