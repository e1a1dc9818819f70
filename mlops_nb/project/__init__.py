"""Projects: ``mlops-nb init`` scaffolds one from a template (``scaffold``); ``demo`` tells the level-1 story."""
