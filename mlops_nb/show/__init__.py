"""Rendering shared by the faces: terminal tables (``terminal``), notebook HTML (``html``), progress
displays (``progress``), the views every command shows (``views``) and the notebook formatters
(``notebook``). Capabilities return data; this package turns it into something to look at."""
