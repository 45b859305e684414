"""Pipelines of tf4ctr-keras, in two layers.

* :mod:`pipelines.data`: the data side. Dataset specs, raw files -> vocabularies -> sharded
  TFRecords + manifest, the ``tf.data`` reader, the Criteo-format generator. It imports
  nothing from the training side or the model library.
* :mod:`pipelines.training`: the training side. Run configuration, the Keras ``fit`` loop and
  the multi-worker loop over shared pieces, the reference schedule, exact evaluation,
  run directories and hyperparameter search. It reads data only through :mod:`pipelines.data`.

Entry points (thin wrappers around the two layers)::

    python -m pipelines.prepare    # pipelines.data.prepare
    python -m pipelines.generate   # pipelines.data.generate
    python -m pipelines.train      # pipelines.training.cli
    python -m pipelines.tune       # pipelines.training.tune
"""
