"""Edit counts of normalised transcripts (WER, CER) and Whisper's repetition-loop measure.

The ``wer`` metric (:mod:`urgentbench.metrics.asr`) stores, per utterance, the edits and the
reference length that :func:`error_counts` counts on the normalised strings of a
:class:`NormalisedPair`; :func:`compression_ratio` is how it tells a looping transcript.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COMPRESSION_RATIO_THRESHOLD", "NormalisedPair", "compression_ratio", "error_counts"]

#: Whisper's threshold for a "too repetitive" transcript (gzip compression ratio).
COMPRESSION_RATIO_THRESHOLD = 2.4


def compression_ratio(text: str) -> float:
    """Length of ``text`` in UTF-8 bytes divided by its zlib-compressed length (Whisper's measure)."""
    import zlib

    data = text.encode("utf-8")
    if not data:
        return 0.0
    return len(data) / len(zlib.compress(data))


def error_counts(reference: str, hypothesis: str) -> dict[str, int]:
    """Word and character edit counts of two already-normalised strings, counted by ``jiwer``.

    Words are whitespace-separated tokens (``str.split()``: any Unicode whitespace, runs
    of it and leading/trailing blanks included); characters are those of the words joined
    by single spaces (spaces count, leading and trailing blanks do not). Both are handed
    to ``jiwer`` already tokenised this way (its ``ReduceToListOfListOfWords`` on the
    single-space-joined words, its ``ReduceToListOfListOfChars`` on the joined string),
    so none of its own transforms changes the tokens; the edits are its substitutions +
    deletions + insertions.

    Returns:
        ``wer_edits``, ``wer_ref_words``, ``cer_edits`` and ``cer_ref_chars``.
    """
    import jiwer

    ref_words, hyp_words = reference.split(), hypothesis.split()
    ref_chars, hyp_chars = " ".join(ref_words), " ".join(hyp_words)
    to_words, to_chars = jiwer.ReduceToListOfListOfWords(), jiwer.ReduceToListOfListOfChars()
    words = jiwer.process_words(ref_chars, hyp_chars, to_words, to_words)
    chars = jiwer.process_characters(ref_chars, hyp_chars, to_chars, to_chars)
    return {
        "wer_edits": words.substitutions + words.deletions + words.insertions,
        "wer_ref_words": len(ref_words),
        "cer_edits": chars.substitutions + chars.deletions + chars.insertions,
        "cer_ref_chars": len(ref_chars),
    }


@dataclass(frozen=True)
class NormalisedPair:
    """One utterance's normalised reference and hypothesis, as the ``wer`` metric compares them.

    WER counts word edits between :attr:`wer_reference` and :attr:`wer_hypothesis`, CER
    character edits between :attr:`cer_reference` and :attr:`cer_hypothesis` (see
    :func:`error_counts`); the two pairs differ only for utterances with a language.
    """

    wer_reference: str
    wer_hypothesis: str
    cer_reference: str
    cer_hypothesis: str

    def counts(self) -> dict[str, int]:
        """``wer_edits``, ``wer_ref_words``, ``cer_edits`` and ``cer_ref_chars`` of this pair (:func:`error_counts`)."""
        words = error_counts(self.wer_reference, self.wer_hypothesis)
        chars = error_counts(self.cer_reference, self.cer_hypothesis)
        return {
            "wer_edits": words["wer_edits"],
            "wer_ref_words": words["wer_ref_words"],
            "cer_edits": chars["cer_edits"],
            "cer_ref_chars": chars["cer_ref_chars"],
        }
