"""The training side: run configuration (:mod:`.config`), the pieces both training loops share
(:mod:`.common`: build, compile, losses, schedule, end of run), the Keras ``fit`` loop
(:mod:`.keras_fit`) and the multi-worker loop (:mod:`.multi_worker`), chosen in one place
(:func:`pipelines.training.run.train`), exact evaluation, the reference schedule, run
directories (:mod:`.rundir`), the run's input data (:mod:`.inputs`), the CLI (:mod:`.cli`) and
hyperparameter search (:mod:`.tune`). It imports the data side, never the other way round.
"""
