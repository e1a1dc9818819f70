"""Data validation, drift statistics, the model gate and model cards: functions on pandas/numpy and the registry."""
