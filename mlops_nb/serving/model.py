"""The model a service answers with: the version behind an alias, followed as the alias moves.

A background thread looks at the alias every ``FOLLOW_SECONDS``. When it points at another
version, that version is loaded (its sha256 checked) beside the serving one and swapped in
with one assignment, so a request in flight finishes on the version it started with and
none fails. A version that does not load is not swapped in: the old one keeps serving and
the reason is logged (and tried again later).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_nb.registry import artifacts, models
from mlops_nb.registry.store import Store, open_store
from mlops_nb.serving.protocol import Signature
from mlops_nb.tracking import modelio

FOLLOW_SECONDS = 1.0
RETRY_SECONDS = 30.0
log = logging.getLogger("mlops_nb.serving")


@dataclass(frozen=True)
class Loaded:
    name: str
    version: int
    model: Any
    signature: Signature | None
    since: float


def parse_ref(ref: str) -> tuple[str, str]:
    """``churn`` or ``churn@staging`` -> (name, alias); the alias defaults to production."""
    name, _, alias = ref.partition("@")
    return models.check_model_name(name), models.check_alias(alias or "production")


class ServedModel:
    def __init__(self, home: str | Path, ref: str):
        self.name, self.alias = parse_ref(ref)
        self.store: Store = open_store(home)
        self.current = self._load(models.alias_version(self.store, self.name, self.alias))
        self._failed: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.log = None  # the prediction log the app writes to
        self.features: list = []  # the feature views rows are filled in from (serve --features)
        self._filler: tuple = (None, None)

    def _load(self, version: int) -> Loaded:
        found = models.get_version(self.store, self.name, version)
        model = modelio.deserialize_model(artifacts.read_verified(self.store.artifacts_dir, found.sha256))
        return Loaded(self.name, version, model, Signature.of(found.signature), time.time())

    def filler(self, loaded: Loaded):
        """What fills rows in from :attr:`features` for version ``loaded`` (its signature says what it needs)."""
        if self._filler[0] is not loaded:
            from mlops_nb.serving.fill import FeatureFiller

            self._filler = (loaded, FeatureFiller(self.store, self.features, loaded.signature))
        return self._filler[1]

    def follow(self) -> None:
        """Start following the alias in the background."""
        self._thread = threading.Thread(target=self._follow, name="mlops-nb-follow-alias", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def check_alias(self) -> None:
        """Swap in the version the alias points at now, if it changed and loads."""
        version = models.alias_version(self.store, self.name, self.alias)
        if version == self.current.version or time.time() - self._failed.get(version, 0) < RETRY_SECONDS:
            return
        try:
            loaded = self._load(version)
        except Exception as exc:  # a broken file, a tampered one, an unpicklable model: keep serving the old
            self._failed[version] = time.time()
            log.warning("mlops-nb serve: %s/%s not swapped in, %s/%s keeps serving: %s", self.name, version,
                        self.name, self.current.version, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return
        log.info("mlops-nb serve: %s@%s now version %s (was %s)", self.name, self.alias, version, self.current.version)
        self.current = loaded

    def _follow(self) -> None:
        while not self._stop.wait(FOLLOW_SECONDS):
            try:
                self.check_alias()
            except Exception as exc:  # the registry busy for a moment: look again next time
                log.warning("mlops-nb serve: cannot read %s@%s: %s", self.name, self.alias, exc)
