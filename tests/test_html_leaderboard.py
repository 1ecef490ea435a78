"""The HTML leaderboard in a real headless browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from report_helpers import FAST_METRICS, enhanced_dir, make_report_suite, write_degraded

from urgentbench.cli import main
from urgentbench.report.html import png_bytes, spectrogram_png

CHROMIUM = Path("/usr/bin/chromium")
EVIL = "<script>alert(1)</script>"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def test_png_encoder_writes_valid_images():
    import zlib

    import numpy as np

    data = png_bytes(np.zeros((3, 5, 3), dtype=np.uint8))
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (5, 3)
    idat = data.index(b"IDAT")
    length = int.from_bytes(data[idat - 4:idat], "big")
    assert len(zlib.decompress(data[idat + 4:idat + 4 + length])) == 3 * (1 + 5 * 3)
    tone = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000)
    png = spectrogram_png(tone, 16000, width=100, height=40)
    assert png[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(np.zeros((3, 5), dtype=np.float32))


@pytest.fixture(scope="module")
def page_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A scored suite with `noisy` and a degraded submission from a team named like a script tag."""
    root = tmp_path_factory.mktemp("html")
    mp = pytest.MonkeyPatch()
    mp.setenv("URGENTBENCH_SUITES_PATH", str(make_report_suite(root)))
    from urgentbench.suites import SUITES

    SUITES.rescan()
    results = root / "results"
    common = ["--suite", "rep", "--metrics", FAST_METRICS, "--results-dir", str(results), "--jobs", "1"]
    assert main(["-q", "run", "--system", "noisy", *common]) == 0
    degraded = write_degraded(enhanced_dir(results, "rep@1", "noisy"), root / "team", snr_db=10.0)
    assert main(["-q", "score", "--outputs", str(degraded), "--name", EVIL, *common]) == 0
    out = root / "lb"
    assert main(["-q", "leaderboard", "--suite", "rep", "--metrics", FAST_METRICS, "--results-dir", str(results),
                 "--output-dir", str(out), "--format", "md,csv,json,html", "--audio-utterances", "2"]) == 0
    yield out / "rep"
    mp.undo()
    SUITES.rescan()


def test_html_page_is_self_contained_and_escaped(page_dir: Path):
    page = (page_dir / "leaderboard.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert EVIL not in page
    assert page.count("<script>") == 1  # only the page's own inline script
    for remote in ("http://", "https://", "//cdn", "<link rel=\"stylesheet\""):
        assert remote not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    lb = json.loads((page_dir / "leaderboard.json").read_text())
    assert [r["system"] for r in lb["rows"]] == ["noisy", EVIL]
    for row in lb["rows"]:
        low, high = row["ci"]["pesq"]
        assert low <= row["values"]["pesq"] <= high
    assert lb["rows"][1]["p_vs_first"]["pesq"] < 0.05
    assert lb["statistics"]["paired_reference"] == "noisy"
    # audio: 2 utterances x (unprocessed, reference, 2 systems), small compressed files
    oggs = sorted((page_dir / "audio").rglob("*.ogg"))
    assert len(oggs) == 8 and all(p.stat().st_size < 200_000 for p in oggs)


@pytest.fixture(scope="module")
def server(page_dir: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(page_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/leaderboard.html"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (`make browser` installs Debian's chromium)")
def test_page_in_headless_chromium(server: str, page_dir: Path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
            page.goto(server)
            page.wait_for_load_state("networkidle")

            # the team name is text, not markup
            names = page.locator("#ranking tbody td.name").all_inner_texts()
            assert names == ["noisy", EVIL]
            assert page.locator("#ranking tbody script").count() == 0

            # sorting: PESQ ascending puts the degraded team first, descending puts it back
            header = page.locator("#ranking thead th.sortable", has_text="pesq")
            header.click()
            assert header.get_attribute("aria-sort") == "descending"
            assert page.locator("#ranking tbody td.name").all_inner_texts() == ["noisy", EVIL]
            header.click()
            assert header.get_attribute("aria-sort") == "ascending"
            assert page.locator("#ranking tbody td.name").all_inner_texts() == [EVIL, "noisy"]
            page.locator("#ranking thead th.sortable", has_text="system").click()
            assert page.locator("#ranking tbody td.name").all_inner_texts() == sorted(["noisy", EVIL])
            # a breakdown table sorts too
            estoi = page.locator("table.breakdown thead th.sortable", has_text="estoi").first
            column = int(estoi.get_attribute("data-col")) + 1
            cells = page.locator("table.breakdown").first.locator(f"tbody tr td:nth-child({column})")
            before = [float(v) for v in cells.all_inner_texts()]
            estoi.click()  # higher is better: best first
            values = [float(v) for v in cells.all_inner_texts()]
            assert len(values) == 4 and values == sorted(before, reverse=True) and values != before

            # one chart per output, with CI whiskers
            assert page.locator("figure.chart svg").count() == len(FAST_METRICS.split(","))

            # every audio and image source exists and is served; the audio decodes
            sources = page.eval_on_selector_all("audio", "els => els.map(e => e.getAttribute('src'))")
            images = page.eval_on_selector_all(".clip img", "els => els.map(e => e.getAttribute('src'))")
            assert len(sources) == 8 and len(images) == 8
            for src in sources + images:
                assert not src.startswith(("/", "http")), src
                assert (page_dir / src).is_file(), src
                assert page.request.get(server.rsplit("/", 1)[0] + "/" + src).status == 200
            # the picker shows one utterance at a time
            visible = page.locator(".utterance:visible")
            assert visible.count() == 1
            options = page.eval_on_selector_all("#utterance-picker option", "els => els.map(e => e.value)")
            page.select_option("#utterance-picker", options[1])
            assert visible.count() == 1 and visible.first.get_attribute("data-utterance") == options[1]
            durations = page.eval_on_selector_all(
                ".utterance:not([hidden]) audio",
                """els => Promise.all(els.map(a => new Promise(res => {
                    if (a.readyState >= 1) return res(a.duration);
                    a.addEventListener('loadedmetadata', () => res(a.duration), {once: true});
                    a.addEventListener('error', () => res(-1), {once: true});
                    a.preload = 'metadata'; a.load();
                })))""",
            )
            assert len(durations) == 4 and all(d > 0.5 for d in durations), durations
            assert problems == []
        finally:
            browser.close()


def test_ogg_clips_are_byte_identical_across_regenerations():
    import io

    import numpy as np
    import soundfile as sf

    from urgentbench.report.html import _ogg_crc, fixed_ogg_serial

    wave = (0.3 * np.sin(np.arange(16000) / 7.0)).astype(np.float32)
    encoded = []
    for _ in range(2):
        buf = io.BytesIO()
        sf.write(buf, wave, 16000, format="OGG", subtype="VORBIS")
        encoded.append(buf.getvalue())
    assert encoded[0] != encoded[1]  # libsndfile picks a random stream serial number
    first = bytearray(encoded[0])
    page_len = 27 + first[26] + sum(first[27 : 27 + first[26]])
    crc = int.from_bytes(first[22:26], "little")
    first[22:26] = b"\0\0\0\0"
    assert _ogg_crc(bytes(first[:page_len])) == crc  # our CRC is the one libogg writes
    fixed = [fixed_ogg_serial(e) for e in encoded]
    assert fixed[0] == fixed[1]
    decoded, rate = sf.read(io.BytesIO(fixed[0]), dtype="float32")
    reference, _ = sf.read(io.BytesIO(encoded[0]), dtype="float32")
    assert rate == 16000 and np.array_equal(decoded, reference)
    with pytest.raises(ValueError, match="not an Ogg page"):
        fixed_ogg_serial(b"RIFF" + fixed[0][4:])
