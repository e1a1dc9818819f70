"""Traffic for a served model: synthetic customers sent as real HTTP requests, and their labels later.

    traffic = send_traffic("http://127.0.0.1:5000", n_rows=1200, concept=1.0, seed=7)
    send_labels("http://127.0.0.1:5000", traffic.ids[:600], traffic.truth[:600])   # hours later, in life

The customers come from :func:`~mlops_nb.project.scaffold.customer_batch` (the template's data),
in requests of ``batch`` rows in MLflow's ``dataframe_split`` form; what the service answered (its
prediction ids, predictions and version) is kept with the true labels the simulator knows.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from mlops_nb.errors import MlopsError


@dataclass
class Traffic:
    ids: list[str] = field(default_factory=list)
    predictions: list = field(default_factory=list)
    truth: list[int] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)   # the version that answered each row

    @property
    def accuracy(self) -> float:
        return sum(p == t for p, t in zip(self.predictions, self.truth)) / max(len(self.truth), 1)


def send_traffic(url: str, *, n_rows: int, batch: int = 20, seed: int = 0, shift: float = 0.0,
                 concept: float = 0.0, target: str = "churned") -> Traffic:
    """Send ``n_rows`` customers to ``url``/invocations, ``batch`` rows a request."""
    from mlops_nb.project.scaffold import customer_batch

    customers = customer_batch(n_rows=n_rows, seed=seed, shift=shift, concept=concept)
    features = customers.drop(columns=[target])
    columns = list(features.columns)
    traffic = Traffic()
    for start in range(0, n_rows, batch):
        rows = features.iloc[start:start + batch]
        answer = post(url, "/invocations", {"dataframe_split": {"columns": columns,
                                                                "data": rows.values.tolist()}})
        traffic.ids += answer["ids"]
        traffic.predictions += answer["predictions"]
        traffic.versions += [answer["model"]["version"]] * len(answer["ids"])
    traffic.truth = customers[target].tolist()
    return traffic


def send_labels(url: str, ids: list[str], labels: list) -> dict:
    """The true labels of earlier predictions, to ``url``/feedback."""
    return post(url, "/feedback", {"ids": list(ids), "labels": list(labels)})


def post(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(url.rstrip("/") + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise MlopsError(f"{url}{path} answered {exc.code}: {exc.read().decode(errors='replace')[:300]}") from None
    except OSError as exc:
        raise MlopsError(f"cannot reach {url}{path}: {exc}") from None
