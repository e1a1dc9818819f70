"""Feature views: one definition of each feature for training, serving and monitoring (features.yaml)."""
