"""ssmred's application: the ``ssmred`` command, run configurations, data sets, the trainer, experiments
and reports, built on the core (:mod:`ssmred`) and the PyTorch adapter (:mod:`ssmred_torch`).

Importing this package imports no ML framework; a command imports PyTorch when it runs.
"""
