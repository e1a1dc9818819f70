"""Data validation, drift statistics and (soon) the model gate: pure functions on pandas/numpy."""
