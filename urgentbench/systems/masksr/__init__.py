"""MaskSR and MaskSR2: generative full-band speech restoration with a masked LM over DAC tokens.

urgentbench's own implementation (no official code or weights exist) of

* MaskSR: X. Li, Q. Wang, X. Liu, "MaskSR: Masked Language Model for Full-band Speech
  Restoration", Interspeech 2024 (arXiv 2406.02092), and
* MaskSR2: X. Liu, X. Li, J. Serrà, S. Pascual, "Joint Semantic Knowledge Distillation and
  Masked Acoustic Modeling for Full-band Speech Restoration with Improved
  Intelligibility", ICASSP 2025 (arXiv 2409.09357).

Modules:

* :mod:`.configs`: sizes S/M/L (+ tiny), the source of every hyper-parameter;
* :mod:`.codec`: the frozen DAC 44.1 kHz tokenizer (``transformers``);
* :mod:`.encoder`: |STFT|^0.3 -> MLP -> transformer speech encoder;
* :mod:`.semantic`: HuBERT teacher, frame alignment, k-means, MaskSR2's distillation head;
* :mod:`.mlm`: the masked LM over 9 parallel codebooks, cosine masking, null condition;
* :mod:`.model`: the trainable network; :mod:`.decode`: MaskGIT decoding with CFG;
* :mod:`.checkpoint`: safetensors checkpoints; :mod:`.data`: on-the-fly simulation;
* :mod:`.train`: the DDP training recipe (``urgentbench train``); :mod:`.system`: the
  benchmark systems ``masksr-{S,M,L}`` and ``masksr2-{S,M,L}``; :mod:`.assets`: codec,
  teacher and checkpoint assets.

Importing this package imports neither torch nor transformers.
"""
