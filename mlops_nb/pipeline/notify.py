"""Telling people: ``notify:`` in pipeline.yaml sends a pipeline's events to webhooks and commands.

    notify:
      - {webhook: "https://hooks.slack.com/services/...", format: slack, on: [failed, gate_failed]}
      - {command: "mail -s \\"$MLOPS_NB_EVENT_TITLE\\" team@example.com", on: [promoted, rolled_back]}

Events: ``fired`` (a trigger fired), ``failed`` (a pipeline run failed), ``gate_failed`` (the gate refused a
model), ``promoted`` (an alias moved to a new version during a run), ``rolled_back`` (``mlops-nb models
rollback``). ``on:`` left out means every event. A webhook gets a JSON POST (``format: json``, the default,
is the event itself; ``slack`` and ``teams`` are bodies their incoming webhooks accept); a command gets the
event in ``MLOPS_NB_EVENT_*`` variables (``MLOPS_NB_EVENT_JSON`` holds all of it). Delivery is retried with
backoff (``retries: 3``, ``backoff: 1`` second, doubling); a failure to notify never fails the pipeline,
and each notification is recorded with every attempt (``mlops-nb notifications``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mlops_nb.pipeline.safe_yaml import SpecError

EVENTS = ("fired", "failed", "gate_failed", "promoted", "rolled_back")
FORMATS = ("json", "slack", "teams")
_FIELDS = ("webhook", "command", "on", "format", "retries", "backoff", "timeout")


@dataclass(frozen=True)
class Target:
    webhook: str | None = None
    command: str | None = None
    on: tuple[str, ...] = EVENTS
    format: str = "json"
    retries: int = 3              # attempts after the first
    backoff: float = 1.0          # seconds before the first retry, doubling after each
    timeout: float = 10.0         # seconds per attempt

    @property
    def label(self) -> str:
        """Where it goes, fit to be stored: a webhook's URL without its credentials or query, or the command."""
        if self.webhook is None:
            return f"command: {self.command}"
        parts = urlsplit(self.webhook)
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        path = parts.path if len(parts.path) <= 24 else parts.path[:12] + "..."  # Slack's path is its secret
        return "webhook: " + urlunsplit((parts.scheme, netloc, path, "", ""))


def parse_notify(value: Any, where: str) -> tuple[Target, ...]:
    """The ``notify:`` list of pipeline.yaml; one-line errors naming the entry and the field."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SpecError(f"{where}: field 'notify' must be a list of targets such as "
                        "- {webhook: URL, on: [failed]} or - {command: '...'}")
    targets = []
    for index, raw in enumerate(value):
        at = f"{where}: notify entry {index + 1}"
        if not isinstance(raw, dict):
            raise SpecError(f"{at}: expected a mapping with webhook: URL or command: '...', got {raw!r}")
        raw = {("on" if k is True else k): v for k, v in raw.items()}  # YAML 1.1 reads a bare on: as true
        unknown = [k for k in raw if k not in _FIELDS]
        if unknown:
            raise SpecError(f"{at}: unknown field {unknown[0]!r}; the fields are {', '.join(_FIELDS)}")
        webhook, command = raw.get("webhook"), raw.get("command")
        if (webhook is None) == (command is None):
            raise SpecError(f"{at}: give exactly one of webhook: URL or command: '...'")
        if webhook is not None and (not isinstance(webhook, str) or urlsplit(webhook).scheme not in ("http", "https")
                                    or not urlsplit(webhook).hostname):
            raise SpecError(f"{at}, field 'webhook': expected an http:// or https:// URL, got {webhook!r}")
        if command is not None and (not isinstance(command, str) or not command.strip()):
            raise SpecError(f"{at}, field 'command': expected a shell command, got {command!r}")
        on = raw.get("on", list(EVENTS))
        on = [on] if isinstance(on, str) else on
        if not isinstance(on, list) or not on or any(e not in EVENTS for e in on):
            bad = next((e for e in on if e not in EVENTS), on) if isinstance(on, list) and on else on
            raise SpecError(f"{at}, field 'on': {bad!r} is not an event; the events are {', '.join(EVENTS)}")
        fmt = raw.get("format", "json")
        if fmt not in FORMATS or (command is not None and "format" in raw):
            raise SpecError(f"{at}, field 'format': expected one of {', '.join(FORMATS)} (webhooks only), got {fmt!r}")
        retries, backoff, timeout = raw.get("retries", 3), raw.get("backoff", 1.0), raw.get("timeout", 10.0)
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
            raise SpecError(f"{at}, field 'retries': expected a whole number from 0 to 10, got {retries!r}")
        for name, number in (("backoff", backoff), ("timeout", timeout)):
            if not isinstance(number, (int, float)) or isinstance(number, bool) or number < 0 or \
                    (name == "timeout" and number == 0):
                raise SpecError(f"{at}, field {name!r}: expected seconds (a positive number), got {number!r}")
        targets.append(Target(webhook, command, tuple(on), fmt, retries, float(backoff), float(timeout)))
    return tuple(targets)


def notify(store, pipeline, event: str, *, run_id: str | None = None, reason: str = "",
           details: dict | None = None) -> list[dict]:
    """Send ``event`` to each of ``pipeline``'s targets that wants it and record each; never raises
    (a notification that cannot be sent is recorded as failed). Returns the records."""
    from mlops_nb.registry import notifications

    sent = []
    targets = [t for t in getattr(pipeline, "notify", ()) if event in t.on]
    if not targets:
        return sent
    payload = {"event": event, "pipeline": pipeline.name, "run_id": run_id, "reason": reason,
               "at": time.time(), "host": socket.gethostname(), **(details or {})}
    for target in targets:
        ok, attempts = _deliver(target, payload)
        try:
            notifications.record(store, pipeline.name, event, run_id, target.label, payload, ok, attempts)
        except Exception:  # the registry is unwell: the pipeline's own outcome is what counts
            pass
        sent.append({"target": target.label, "ok": ok, "attempts": attempts})
    return sent


def title(payload: dict) -> str:
    what = {"fired": "a trigger fired", "failed": "the run failed", "gate_failed": "the gate refused a model",
            "promoted": "a model was promoted", "rolled_back": "a model was rolled back"}[payload["event"]]
    return f"mlops-nb: {payload['pipeline']}: {what}"


def body(target: Target, payload: dict) -> dict:
    """What a webhook is sent: the event itself, or a message Slack's or Teams' incoming webhooks take."""
    text = payload["reason"] + (f" (run {payload['run_id'][:8]})" if payload.get("run_id") else "")
    if target.format == "slack":
        return {"text": f"*{title(payload)}*\n{text}", "mlops_nb": payload}
    if target.format == "teams":
        colour = {"failed": "D70000", "gate_failed": "D70000", "promoted": "2EB67D"}.get(payload["event"], "0078D7")
        return {"@type": "MessageCard", "@context": "https://schema.org/extensions", "summary": title(payload),
                "themeColor": colour, "title": title(payload), "text": text}
    return payload


def _deliver(target: Target, payload: dict) -> tuple[bool, list[dict]]:
    attempts = []
    for attempt in range(target.retries + 1):
        if attempt:
            time.sleep(target.backoff * 2 ** (attempt - 1))
        started = time.time()
        try:
            outcome = _post(target, payload) if target.webhook else _run(target, payload)
            error = None if outcome.get("ok") else outcome.pop("error", "failed")
        except Exception as exc:  # a refused connection, a timeout, a missing command
            outcome, error = {"ok": False}, f"{type(exc).__name__}: {str(exc)[:200]}"
        attempts.append({"attempt": attempt + 1, "at": started, "seconds": round(time.time() - started, 3),
                         **outcome, "error": error})
        if outcome.get("ok"):
            return True, attempts
    return False, attempts


def _post(target: Target, payload: dict) -> dict:
    import urllib.error
    import urllib.request

    data = json.dumps(body(target, payload), default=str).encode()
    request = urllib.request.Request(target.webhook, data=data, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "mlops-nb"})
    try:
        with urllib.request.urlopen(request, timeout=target.timeout) as response:
            return {"ok": 200 <= response.status < 300, "status": response.status}
    except urllib.error.HTTPError as exc:
        return {"ok": False, "status": exc.code, "error": f"HTTP {exc.code} {exc.reason}"}


def _run(target: Target, payload: dict) -> dict:
    env = dict(os.environ)
    env.update({f"MLOPS_NB_EVENT_{k.upper()}": "" if v is None else str(v) for k, v in payload.items()
                if not isinstance(v, (dict, list))})
    env["MLOPS_NB_EVENT_TITLE"] = title(payload)
    env["MLOPS_NB_EVENT_JSON"] = json.dumps(payload, default=str)
    done = subprocess.run(target.command, shell=True, env=env, capture_output=True, text=True,
                          timeout=target.timeout)
    out = {"ok": done.returncode == 0, "returncode": done.returncode}
    if done.returncode:
        out["error"] = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1][:200]
    return out


def run_events(store, pipeline, result) -> None:
    """After a pipeline run: ``failed`` if it failed, ``gate_failed`` for each model its gate refused and
    ``promoted`` for each alias it moved (with the gate's verdict on that version)."""
    if not pipeline.notify:
        return
    from mlops_nb.registry import gates

    try:
        decisions, moves = gates.run_outcome(store, result.run_id)
    except Exception:  # never let telling people break the run
        return
    verdicts = {(d["name"], d["version"]): _verdict(d) for d in decisions}
    if result.status == "failed":
        failed = [s for s in result.steps.values() if s.status == "failed"]
        reason = failed[0].failure.summary() if failed and failed[0].failure else "the run failed"
        notify(store, pipeline, "failed", run_id=result.run_id, reason=reason,
               details={"failed_steps": [s.name for s in failed]})
    for decision in decisions:
        if not decision["passed"]:
            verdict = verdicts[(decision["name"], decision["version"])]
            notify(store, pipeline, "gate_failed", run_id=result.run_id,
                   reason=f"the gate refused {verdict['model']}: {'; '.join(verdict['failed_rules'])[:500]}",
                   details={"verdict": verdict})
    for move in moves:
        notify(store, pipeline, "promoted", run_id=result.run_id, reason=_moved(move),
               details={"model": move["name"], "alias": move["alias"], "version": move["version"],
                        "previous": move["previous"], "verdict": verdicts.get((move["name"], move["version"]))})


def model_event(store, name: str, event: str, move: dict, decision: dict | None = None) -> None:
    """``promoted`` or ``rolled_back`` by hand (``mlops-nb models promote|rollback``): sent to the targets of
    the pipeline that trained the version."""
    from mlops_nb.pipeline.spec import load_pipeline
    from mlops_nb.registry import models, runs

    try:
        version = models.get_version(store, name, move["version"])
        path = runs.pipeline_file_of(store, version.run_id)
        pipeline = load_pipeline(path) if path and os.path.isfile(path) else None
    except Exception:
        return
    if pipeline is None or not pipeline.notify:
        return
    verdict = _verdict({**decision, "name": name, "version": move["version"]}) if decision else None
    notify(store, pipeline, event, run_id=version.run_id, reason=_moved(move),
           details={"model": name, "alias": move["alias"], "version": move["version"], "previous": move["previous"],
                    "verdict": verdict})


def _verdict(decision: dict) -> dict:
    return {"model": f"{decision['name']}/{decision['version']}", "passed": decision["passed"],
            "baseline_version": decision.get("baseline_version"),
            "failed_rules": [r.get("detail", "") for r in decision.get("results", []) if not r.get("passed")]}


def _moved(move: dict) -> str:
    was = f" (was version {move['previous']})" if move.get("previous") else ""
    how = "rolled back to" if move.get("action") == "rollback" else "now points at"
    return f"{move['name']}@{move['alias']} {how} version {move['version']}{was}"
