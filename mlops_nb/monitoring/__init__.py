"""Monitoring a served model from its own prediction log and the labels that came back.

:func:`~mlops_nb.monitoring.monitor.monitor` summarises the log per window (traffic, latency,
input and prediction drift against the serving version's training data, the live metric on
the labelled part); the triggers read the same figures (``drift: {predictions: churn}``,
``performance: {model: churn, min_labels: 200}``) and a training step takes the labelled
predictions as new training data (:func:`~mlops_nb.monitoring.monitor.labelled_predictions`).
"""
