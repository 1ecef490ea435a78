"""Languages and text normalisation of multilingual WER/CER, as URGENT 2025 scores them.

URGENT 2025 gives each utterance its language in ``utt2lang`` (ISO 639-2 codes such as
``eng``, ``deu``, ``fra``, ``spa``, ``zho``), decodes with that language, skips references
written ``<not-available>`` and cleans reference and hypothesis with ESPnet's
``TextCleaner("whisper_basic")``, i.e. Whisper's ``BasicTextNormalizer``. URGENT 2024
(English only) cleaned with ``TextCleaner("whisper_en")``, Whisper's
``EnglishTextNormalizer``.

urgentbench's ``wer`` metric follows this when an utterance carries a language:

- decoding language: the utterance's, mapped to Whisper's two-letter code by
  :func:`whisper_language`;
- WER: the English normaliser for English utterances, the basic normaliser otherwise;
- CER: the basic normaliser for every language (URGENT 2025's ranked CAcc).

Utterances without a language keep the metric's English-only behaviour (English decoding,
English normaliser for both), so existing suites' numbers do not change.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NOT_AVAILABLE", "is_english", "urgent_texts", "whisper_language"]

#: How URGENT's metadata writes a missing transcript; such references are skipped.
NOT_AVAILABLE = "<not-available>"

#: ISO 639-2 (bibliographic and terminological) and ISO 639-3 codes of languages Whisper
#: decodes, mapped to Whisper's ISO 639-1 codes. Two-letter codes and English names
#: (``"german"``) are accepted directly by :func:`whisper_language`.
_ISO639_2_TO_1 = {
    "afr": "af", "amh": "am", "ara": "ar", "arb": "ar", "asm": "as", "aze": "az", "bak": "ba",
    "bel": "be", "ben": "bn", "bod": "bo", "tib": "bo", "bos": "bs", "bre": "br", "bul": "bg",
    "cat": "ca", "ces": "cs", "cze": "cs", "cmn": "zh", "cym": "cy", "wel": "cy", "dan": "da",
    "deu": "de", "ger": "de", "ell": "el", "gre": "el", "eng": "en", "est": "et", "eus": "eu",
    "baq": "eu", "fao": "fo", "fas": "fa", "per": "fa", "fin": "fi", "fra": "fr", "fre": "fr",
    "glg": "gl", "guj": "gu", "hat": "ht", "hau": "ha", "haw": "haw", "heb": "he", "hin": "hi",
    "hrv": "hr", "hun": "hu", "hye": "hy", "arm": "hy", "ind": "id", "isl": "is", "ice": "is",
    "ita": "it", "jav": "jw", "jpn": "ja", "kan": "kn", "kat": "ka", "geo": "ka", "kaz": "kk",
    "khm": "km", "kor": "ko", "lao": "lo", "lat": "la", "lav": "lv", "lin": "ln", "lit": "lt",
    "ltz": "lb", "mal": "ml", "mar": "mr", "mkd": "mk", "mac": "mk", "mlg": "mg", "mlt": "mt",
    "mon": "mn", "mri": "mi", "mao": "mi", "msa": "ms", "may": "ms", "mya": "my", "bur": "my",
    "nep": "ne", "nld": "nl", "dut": "nl", "nno": "nn", "nor": "no", "nob": "no", "oci": "oc",
    "pan": "pa", "pol": "pl", "por": "pt", "pus": "ps", "ron": "ro", "rum": "ro", "rus": "ru",
    "san": "sa", "sin": "si", "slk": "sk", "slo": "sk", "slv": "sl", "sna": "sn", "snd": "sd",
    "som": "so", "spa": "es", "sqi": "sq", "alb": "sq", "srp": "sr", "sun": "su", "swa": "sw",
    "swe": "sv", "tam": "ta", "tat": "tt", "tel": "te", "tgk": "tg", "tgl": "tl", "tha": "th",
    "tuk": "tk", "tur": "tr", "ukr": "uk", "urd": "ur", "uzb": "uz", "vie": "vi", "yid": "yi",
    "yor": "yo", "yue": "yue", "zho": "zh", "chi": "zh",
}


def whisper_language(code: str) -> str:
    """Whisper's language code for a corpus's language code.

    Args:
        code: An ISO 639-1 code (``de``), an ISO 639-2/639-3 code (``deu``, ``ger``), a
            language name Whisper knows (``german``), or a locale such as ``en-US`` /
            ``zh_CN`` (the part before ``-``/``_``); case does not matter.

    Raises:
        ValueError: For a language Whisper does not decode (the message names it).
    """
    from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE

    raw = str(code).strip()
    key = raw.lower().replace("_", "-")
    candidates = [key, key.split("-", 1)[0]]
    for cand in candidates:
        if cand in LANGUAGES:
            return cand
        if cand in _ISO639_2_TO_1 and _ISO639_2_TO_1[cand] in LANGUAGES:
            return _ISO639_2_TO_1[cand]
        if cand in TO_LANGUAGE_CODE:
            return TO_LANGUAGE_CODE[cand]
    raise ValueError(f"language {raw!r} is not one Whisper decodes (give an ISO 639-1 or 639-2 code, e.g. de or deu)")


def is_english(code: str) -> bool:
    """Whether a language code (any form :func:`whisper_language` accepts) is English."""
    try:
        return whisper_language(code) == "en"
    except ValueError:
        return False


_NORMALISERS: dict[str, Any] = {}


def _normaliser(kind: str) -> Any:
    if kind not in _NORMALISERS:
        from whisper.normalizers import BasicTextNormalizer, EnglishTextNormalizer

        _NORMALISERS[kind] = EnglishTextNormalizer() if kind == "english" else BasicTextNormalizer()
    return _NORMALISERS[kind]


def urgent_texts(text: str, language: str) -> tuple[str, str]:
    """The strings WER and CER compare for one side (reference or hypothesis), URGENT 2025 style.

    Args:
        text: Raw transcript.
        language: The utterance's language (any form :func:`whisper_language` accepts).

    Returns:
        ``(wer_text, cer_text)``: the English normaliser's output for English WER (the basic
        normaliser's for other languages), and the basic normaliser's for CER; whitespace
        collapsed and stripped in both.
    """
    basic = " ".join(_normaliser("basic")(text).split())
    if is_english(language):
        return " ".join(_normaliser("english")(text).split()), basic
    return basic, basic
