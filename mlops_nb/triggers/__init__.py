"""When a pipeline runs, and why: triggers evaluated by `mlops-nb triggers check` or `mlops-nb watch`."""
