"""The two Whisper decoders behind the ``wer`` metric: faster-whisper (CTranslate2) and openai-whisper (PyTorch).

Both decode with the same settings, as far as each library allows: English, no language
detection, beam search of the metric's width, temperature 0 only (no sampling fallback),
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

logger = logging.getLogger(__name__)

#: Whisper's defaults, used explicitly by both backends.
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0


class FasterWhisperBackend:
    """Whisper in CTranslate2 format through faster-whisper.

    Args:
        model_dir: A CTranslate2 Whisper folder (``model.bin``, ``config.json``, tokenizer).
        compute_type: CTranslate2 compute type (``"int8"``, ``"float32"``...).
        threads: CTranslate2 threads (0: the library's default).
    """

    name = "faster-whisper"

    def __init__(self, model_dir: Path, compute_type: str, threads: int):
        from faster_whisper import WhisperModel

        self.model = WhisperModel(
            str(model_dir),
            device="cpu",
            compute_type=compute_type,
            cpu_threads=threads,
            local_files_only=True,
        )

    def transcribe(self, audio: np.ndarray, beam_size: int, no_repeat_ngram_size: int = 0) -> str:
        """Raw transcript of one 16 kHz float32 waveform."""
        return _faster_transcribe(self.model, audio, beam_size, no_repeat_ngram_size)

    def transcribe_batch(
        self, audios: list[np.ndarray], beam_size: int, no_repeat_ngram_size: int = 0
    ) -> list[str | Exception]:
        """Raw transcripts of several waveforms, their model calls batched (see the module docstring).

        Returns:
            One transcript per waveform, or the exception its decoding raised.
        """
        if len(audios) <= 1:
            return [_guarded(self.transcribe, a, beam_size, no_repeat_ngram_size) for a in audios]
        batcher = _LockstepModel(self.model.model, len(audios))
        clone = copy.copy(self.model)  # shares everything but the model handle
        clone.model = batcher
        out: list[str | Exception | None] = [None] * len(audios)

        def work(index: int) -> None:
            try:
                out[index] = _faster_transcribe(clone, audios[index], beam_size, no_repeat_ngram_size)
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


def _faster_transcribe(model: Any, audio: np.ndarray, beam_size: int, no_repeat_ngram_size: int) -> str:
    segments, _ = model.transcribe(
        audio,
        language="en",
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
    """Whisper through OpenAI's reference implementation (``openai-whisper``, PyTorch, float32 on the CPU).

    Args:
        checkpoint: An OpenAI-format ``.pt`` checkpoint (``dims`` and ``model_state_dict``),
            loaded with ``weights_only=True``.
        threads: torch intra-op threads (0: torch's default).
        alignment_heads: The official model's alignment heads (``whisper._ALIGNMENT_HEADS``),
            if known; only word timestamps use them.
    """

    name = "openai-whisper"

    def __init__(self, checkpoint: Path, threads: int, alignment_heads: bytes | None = None):
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
        self.model = model
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

    def transcribe(self, audio: np.ndarray, beam_size: int, no_repeat_ngram_size: int = 0) -> str:
        """Raw transcript of one 16 kHz float32 waveform."""
        import torch
        import whisper

        self._no_repeat_ngram_size = no_repeat_ngram_size
        try:
            with torch.inference_mode():
                result = whisper.transcribe(
                    self.model,
                    np.ascontiguousarray(audio, dtype=np.float32),
                    verbose=None,
                    language="en",
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
        self, audios: list[np.ndarray], beam_size: int, no_repeat_ngram_size: int = 0
    ) -> list[str | Exception]:
        """One at a time: openai-whisper's ``transcribe`` has no batched form."""
        return [_guarded(self.transcribe, a, beam_size, no_repeat_ngram_size) for a in audios]


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
