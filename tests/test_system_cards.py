"""System cards: one home for wrapper code, cards naming a class and its args, a lazy registry.

The config hashes below were computed from the code before cards carried ``entry`` +
``args`` (when every system had its own ``systems/<name>/system.py``); stored results and
the committed leaderboards key on them, so they must never change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tomllib
import yaml

from urgentbench.registry import UnknownNameError
from urgentbench.systems import CARDS_DIR, SYSTEMS, SystemSpec, build_system
from urgentbench.systems.base import CardError, SystemCard

ROOT = Path(__file__).resolve().parents[1]

#: (system, options, config hash) as the code computed them before the redesign.
PINNED_HASHES = [
    ("deepfilternet3", {}, "496f12567274"),
    ("deepfilternet3", {"atten_lim_db": 20}, "86368b63bb9f"),
    ("demucs-dns48", {}, "7272ff5374d7"),
    ("demucs-dns48", {"chunk_seconds": 10}, "d324c594a07b"),
    ("demucs-dns64", {}, "bf664408b8cf"),
    ("demucs-dns64", {"threads": 2}, "93fe3c2fccff"),
    ("demucs-master64", {}, "58171bdf8557"),
    ("demucs-master64", {"checkpoint": "/tmp/x.th"}, "502e60924a10"),
    ("frcrn", {}, "d4bd26cdf95a"),
    ("masksr-L", {}, "3a74f2f3b92f"),
    ("masksr-M", {}, "bde94b3cd4bb"),
    ("masksr-S", {}, "37516d01cd1a"),
    ("masksr-S", {"steps": 3}, "65a79b23bb89"),
    ("masksr2-L", {}, "86524b3ac5cf"),
    ("masksr2-L", {"checkpoint": "/tmp/c.safetensors", "steps": 2}, "ba2419453560"),
    ("masksr2-M", {}, "2b6bbb737c49"),
    ("masksr2-S", {}, "aa9a8c8ca48c"),
    ("noisy", {}, "cdf247bde3be"),
    ("nsnet2", {}, "b8a45a1d9ded"),
    ("rnnoise", {}, "3883e30de785"),
    ("urgent2024-tfgridnet", {}, "df444ac72a8e"),
    ("urgent2024-tfgridnet", {"normalize_output": False}, "490bc47e3424"),
    ("urgent2026-bsrnn", {}, "1c9e3a5b23a6"),
    ("urgent2026-bsrnn", {"output_peak": None}, "da93e2a43cea"),
    ("urgent2026-bsrnn-flow", {}, "2ca01a8fa453"),
    ("urgent2026-bsrnn-flow", {"steps": 30, "solver": "heun"}, "18509b4f3850"),
    ("voicefixer", {}, "921d14027f1f"),
    ("voicefixer", {"chunk_seconds": 24}, "e282a3b47c48"),
    ("wiener", {}, "b4e3f88be821"),
    ("wiener", {"window_ms": 48}, "27c8edcf93cc"),
]

#: Modules holding system classes; reading cards must import none of them.
CLASS_MODULES = (
    "urgentbench.systems.noisy",
    "urgentbench.systems.wiener",
    "urgentbench.systems.nsnet2",
    "urgentbench.systems.rnnoise",
    "urgentbench.systems.deepfilternet3",
    "urgentbench.systems.demucs",
    "urgentbench.systems.masksr.system",
    "urgentbench.systems.tfgridnet",
    "urgentbench.systems.frcrn",
    "urgentbench.systems.urgent2026",
)


def python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (so ``sys.modules`` shows what it imported)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=300,
    )


# --------------------------------------------------------------------------- config hashes


def test_every_builtin_system_has_a_pinned_default_hash():
    assert {name for name, options, _ in PINNED_HASHES if not options} == set(SYSTEMS.names())
    assert len(SYSTEMS.names()) == 19


@pytest.mark.parametrize(("name", "options", "expected"), PINNED_HASHES)
def test_config_hashes_are_unchanged(name, options, expected):
    system = SYSTEMS.get(name).build(**options)
    assert system.config_hash() == expected
    # the card's own arguments are not among the hashed options
    assert not set(system.card.args) & set(system.options)


# --------------------------------------------------------------------------- one home, cards as data


def test_cards_are_package_data_and_name_classes_inside_the_package():
    assert not (ROOT / "systems").exists()
    assert CARDS_DIR == ROOT / "urgentbench" / "systems" / "cards"
    cards = sorted(CARDS_DIR.glob("*.yaml"))
    assert sorted(p.stem for p in cards) == sorted(SYSTEMS.names())
    for path in cards:
        card = SystemCard.from_yaml(path)
        assert card.name == path.stem and card.path == str(path)
        module, _, attr = card.entry.partition(":")
        assert module.startswith("urgentbench.systems.") and attr, card.entry
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "systems/cards/*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["urgentbench"]


def test_one_class_serves_several_cards_and_the_class_is_never_given_a_card():
    from urgentbench.systems.demucs import DemucsSystem
    from urgentbench.systems.masksr.system import MaskSRSystem

    built = {name: SYSTEMS.get(name).build() for name in ("demucs-dns48", "demucs-dns64", "demucs-master64")}
    assert {type(s) for s in built.values()} == {DemucsSystem}
    assert {n: (s.card.name, s.hidden, s.asset) for n, s in built.items()} == {
        "demucs-dns48": ("demucs-dns48", 48, "demucs-dns48"),
        "demucs-dns64": ("demucs-dns64", 64, "demucs-dns64"),
        "demucs-master64": ("demucs-master64", 64, "demucs-master64"),
    }
    masksr = [SYSTEMS.get(f"{v}-{s}").build() for v in ("masksr", "masksr2") for s in "SML"]
    assert {type(s) for s in masksr} == {MaskSRSystem}
    assert [(s.variant, s.size, s.checkpoint_asset) for s in masksr[:2]] == [
        ("masksr", "S", "masksr-S"), ("masksr", "M", "masksr-M")]
    for cls in (DemucsSystem, MaskSRSystem, SYSTEMS.get("noisy").load_class()):
        assert "card" not in vars(cls)
    with pytest.raises(TypeError, match="needs its system card"):
        DemucsSystem()


def test_user_options_override_card_args_and_then_change_the_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path))  # no asset is present
    spec = SYSTEMS.get("demucs-dns48")
    default = spec.build()
    assert default.args == {"model": "dns48"} and default.needed_assets() == ["demucs-dns48"]
    # giving the card's own value changes nothing, not even the hash
    same = spec.build(model="dns48")
    assert same.options == default.options and same.config_hash() == default.config_hash()
    other = spec.build(model="dns64")
    assert (other.hidden, other.asset, other.needed_assets()) == (64, "demucs-dns64", ["demucs-dns64"])
    assert other.options["model"] == "dns64" and other.config_hash() != default.config_hash()
    assert spec.build(model="dns64", checkpoint="/x.th").needed_assets() == []
    with pytest.raises(ValueError, match="model must be one of dns48, dns64, master64"):
        spec.build(model="dns32")
    with pytest.raises(ValueError, match="size must be one of"):
        SYSTEMS.get("masksr-S").build(size="XL")
    # the override reaches availability: the other model's weights are what is checked
    summary = spec.availability({"model": "dns64"}).summary()
    assert "asset 'demucs-dns64' is missing" in summary and "demucs-dns48" not in summary


def test_card_args_are_checked_against_the_class(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    card = {
        "name": "odd", "description": "d", "sample_rate": 16000,
        "entry": "urgentbench.systems.demucs:DemucsSystem", "args": {"model": "dns48", "width": 3},
    }
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    spec = SystemSpec(SystemCard.from_yaml(folder / "card.yaml"))
    with pytest.raises(CardError, match=r"card\.yaml: args \['width'\] are not arguments of DemucsSystem"):
        spec.build()
    card["args"] = {}
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    with pytest.raises(CardError, match=r"DemucsSystem needs args \['model'\]"):
        SystemSpec(SystemCard.from_yaml(folder / "card.yaml")).build()
    card["args"] = ["model"]
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    with pytest.raises(CardError, match="args must be a mapping"):
        SystemCard.from_yaml(folder / "card.yaml")
    card["args"], card["entry"] = {}, "urgentbench.systems.noisy:NoSuchClass"
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    with pytest.raises(CardError, match="NoSuchClass"):
        SystemSpec(SystemCard.from_yaml(folder / "card.yaml")).build()


# --------------------------------------------------------------------------- lazy registry


def test_unknown_names_suggest_close_ones():
    with pytest.raises(UnknownNameError) as err:
        build_system("demucs-dns46")
    assert "Did you mean 'demucs-dns64' or 'demucs-dns48' or 'demucs-master64'?" in str(err.value)
    assert "Known systems:" in str(err.value) and "wiener-dd" in str(err.value)
    assert "demucs-dns48" in SYSTEMS and "no-such-system" not in SYSTEMS


def test_listing_cards_imports_no_system_code_and_scoring_never_imports_training():
    proc = python(
        f"""
        import json, sys
        from urgentbench.systems import SYSTEMS
        rows = [(e.name, e.load().card.description, e.load().availability().ok) for e in SYSTEMS]
        listed = sorted(m for m in {CLASS_MODULES!r} + ("torch",) if m in sys.modules)
        SYSTEMS.get("wiener").build()
        after_build = sorted(m for m in {CLASS_MODULES!r} if m in sys.modules)
        import urgentbench.systems.masksr.system, urgentbench.systems.masksr.decode  # the scoring path
        import urgentbench.systems.masksr.model, urgentbench.systems.masksr.codec
        SYSTEMS.get("masksr2-S").build(steps=2).needed_assets()
        print(json.dumps([len(rows), listed, after_build, "urgentbench.systems.masksr.train" in sys.modules]))
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    n, listed, after_build, training = json.loads(proc.stdout.strip().splitlines()[-1])
    assert n == 19 and listed == []
    assert after_build == ["urgentbench.systems.wiener"]
    assert training is False


@pytest.fixture()
def plugin_site(tmp_path: Path) -> Path:
    """A fake installed package with three ``urgentbench.systems`` entry points.

    ``gain`` names a card in a light module whose class lives in a module that writes a
    marker when imported; ``legacy`` names a System class carrying its card; ``broken``
    names a module that cannot be imported.
    """
    site = tmp_path / "site"
    pkg = site / "gainplug"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cards.py").write_text(
        textwrap.dedent(
            """
            from urgentbench.systems.base import SystemCard

            GAIN = SystemCard(name="gain", aliases=["louder"], description="scales the level by a card argument",
                              sample_rate=16000, entry="gainplug.heavy:Gain", args={"factor": 2.0})
            """
        )
    )
    (pkg / "heavy.py").write_text(
        textwrap.dedent(
            """
            import os
            from pathlib import Path
            from typing import ClassVar
            from urgentbench.systems.base import System

            Path(os.environ["GAINPLUG_MARKER"]).write_text("imported")

            class Gain(System):
                card_arguments: ClassVar[tuple[str, ...]] = ("factor",)

                def enhance(self, waveform, sample_rate):
                    return waveform * self.args["factor"], sample_rate
            """
        )
    )
    (pkg / "legacy.py").write_text(
        textwrap.dedent(
            """
            from urgentbench.systems.base import System, SystemCard

            class Legacy(System):
                card = SystemCard(name="legacy", description="a class with its own card", sample_rate=16000, entry="")

                def enhance(self, waveform, sample_rate):
                    return waveform, sample_rate
            """
        )
    )
    dist = site / "gainplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gainplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[urgentbench.systems]\ngain = gainplug.cards:GAIN\nlegacy = gainplug.legacy:Legacy\n"
        "broken = gainplug.missing:Nothing\n"
    )
    return site


def test_entry_points_are_read_lazily(plugin_site: Path, tmp_path: Path):
    marker = tmp_path / "marker"
    env = {"PYTHONPATH": os.pathsep.join([str(plugin_site), str(ROOT)]), "GAINPLUG_MARKER": str(marker)}
    proc = python(
        """
        import json, os, sys
        from pathlib import Path
        import numpy as np
        from urgentbench.systems import SYSTEMS, build_system
        build_system("noisy")  # a built-in name reads no entry point
        untouched = "gainplug.cards" not in sys.modules
        names = SYSTEMS.names(include_aliases=True)  # reads the cards, not the classes
        card_only = "gainplug.cards" in sys.modules and not Path(os.environ["GAINPLUG_MARKER"]).exists()
        gain = build_system("louder", factor=3.0)
        y, _ = gain.enhance(np.ones(4, dtype=np.float32), 16000)
        print(json.dumps([untouched, card_only, names, gain.card.name, y.tolist(),
                          build_system("gain").args, build_system("legacy").card.description]))
        """,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    untouched, card_only, names, name, y, args, legacy = json.loads(proc.stdout.strip().splitlines()[-1])
    assert untouched and card_only
    assert {"gain", "louder", "legacy"} <= set(names) and "broken" not in names
    assert "system entry point gainplug.missing:Nothing could not be loaded" in proc.stderr
    assert name == "gain" and y == [3.0] * 4 and args == {"factor": 2.0}
    assert legacy == "a class with its own card"
    assert marker.read_text() == "imported"
    listing = subprocess.run(
        [sys.executable, "-m", "urgentbench.cli", "ls", "systems"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, timeout=300,
    )
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert "scales the level by a card argument" in listing.stdout and "legacy" in listing.stdout
    assert "Traceback" not in listing.stdout + listing.stderr


def test_card_folders_on_the_search_path_still_work(tmp_path, monkeypatch):
    import numpy as np

    folder = tmp_path / "systems" / "halve"
    folder.mkdir(parents=True)
    card = {"name": "halve", "aliases": ["half"], "description": "halves the level", "sample_rate": 16000,
            "entry": "system.py:Halve"}
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    (folder / "system.py").write_text(
        "from urgentbench.systems.base import System\n\n\n"
        "class Halve(System):\n"
        "    def enhance(self, waveform, sample_rate):\n"
        "        return waveform * 0.5, sample_rate\n"
    )
    monkeypatch.setenv("URGENTBENCH_SYSTEMS_PATH", str(tmp_path / "systems"))
    SYSTEMS.rescan()
    try:
        system = build_system("half")
        assert system.card.path == str(folder / "card.yaml")
        assert type(system).__module__ == "urgentbench_systems.halve.system"
        assert system.enhance(np.ones(3, dtype=np.float32), 16000)[0].tolist() == [0.5] * 3
    finally:
        monkeypatch.undo()
        SYSTEMS.rescan()
    assert "halve" not in SYSTEMS
