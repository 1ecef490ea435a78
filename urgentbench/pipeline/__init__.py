"""The run/score pipeline: from a suite and its producers to rows in the results store.

One module per stage, each importing only the stages before it (no cycles)::

    errors       RunError (bad request, before any work) and MetricSetupError (run-level)
    options      RunOptions: every option of a run, built once (CLI > config file > defaults)
    specs        MetricSpec, ProducerSpec and the store key of a (producer, metric) pair
    callables    a Python function f(waveform, rate) -> (waveform, rate) as a producer
    resolve      metric names (or a protocol) -> MetricSpecs, availability checked up front
    provenance   what a run records about code, environment, systems and metrics
    plan         Jobs (one producer on one utterance, the metrics it misses), streamed
    prepare      prepare(job): inputs, enhanced audio (cached), per-rate resampled pairs
    score        score(metric, prepared items): batched or one by one, reference state cached
    worker       WorkerState: loaded models; a batch = prepare every job, then score per metric
    backends     where batches run: in this process, a spawned process pool, or Dask
    distributed  the Dask backend (Dask is imported only with ``--scheduler``)
    results      RunReport, the single writer that stores results as they arrive, the run's
                 one progress bar, and the lines said after it (time per metric, where results are)

:func:`urgentbench.runner.run` ties them together. The folder layout of a results
directory (store, cached inputs, enhanced audio, reference state) is :mod:`urgentbench.layout`.
"""
