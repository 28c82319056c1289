"""The shared harness of the fault matrix (tests/faults/): what moto saw, whole missions, and the four checks every
fault test ends with.

- `MotoCallLog`: the AWS calls the stack's moto server received, read back from moto's own request recorder (the
  `/moto-api/recorder/*` endpoints). Each request is decoded into `MotoCall(service, action, params)`: the service is
  the SigV4 signing name of the request (the IAM prefix: `ec2`, `iam`, `kms`, `s3`, `states`...), the action comes
  from `X-Amz-Target` (JSON protocols), the `Action` form field (query protocols) or botocore's request-URI templates
  of the service (REST protocols, e.g. S3's `PUT /{Bucket}?publicAccessBlock`).
  `MotoCallLog.hold(predicate)` also holds one chosen request inside moto's server, before moto answers it, until
  the test releases it: a function waits inside that AWS call (how a test stops a mission at a precise moment).
- `applied_counts` / `assert_applied_at_most_once`: per change, how many of its remediation's mutating calls (the
  kind's declared `APPLY_ACTIONS` that are not Describe/Get/List) reached moto for the change's resource;
  `calls_after_halt` / `count_applied`: the same over the calls after the kill switch engaged its flag.
- `run_mission(stack, detail, answer=...)`: one whole mission through `aegis_local.scenario.driver.MissionDriver`,
  the approvers' phones answering every request alike ("approve", "deny") or nobody answering ("none": the requests
  stay on the phone until they expire, or a test answers them itself). Returns the driver's `MissionRun`.
- `assert_trail_complete(stack, mission_id, change_ids)`: every change has its terminal audit record and the audit
  chain verifies.
- `assert_no_leak(stack)`: the leak audit over everything the stack persisted, for every secret the emulator and
  moto's STS issued.
- For the modules: `fault_stack()` (one-second CIBA polls, one request per change), `FAULT_CHECKS` with
  `scan_detail` and `reopen_findings` (three one-call fixes, reopened after a mission fixed them), `mission_report`
  (the report `aegis-local` assembles) and `planned_changes` (the plan of a mission that started no execution).

The recorder writes every request to a file; moto reads the file's location once, at import, so the log points the
process-wide recorder at a file of its own and serialises the recorder's writes (handlers call moto from many
threads at once, and a large request body would otherwise be appended in pieces between another thread's).
"""

from __future__ import annotations

import base64
import io
import json
import re
import tempfile
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

from aegis.audit import read_trail
from aegis.audit_chain import verify_mission
from aegis.catalogue import ChangeBase
from aegis.reporting.assembly import audit_details, change_facts
from aegis_local.reporting.leak_audit import LeakAuditResult, audit_stack
from aegis_local.reporting.mission_report import MissionSources, assemble_report
from aegis_local.reporting.report import MissionReportDocument
from aegis_local.scenario.driver import DriveOptions, MissionDriver, MissionRun
from aegis_local.scenario.phone import ApprovalPolicy, EmulatedPhone

__all__ = [
    "FAULT_CHECKS",
    "AnswerAll",
    "HeldCall",
    "MissionRun",
    "MotoCall",
    "MotoCallLog",
    "ProgressLog",
    "applied_counts",
    "assert_applied_at_most_once",
    "assert_no_leak",
    "assert_trail_complete",
    "audit_table",
    "calls_after_halt",
    "count_applied",
    "engages_halt_flag",
    "fault_stack",
    "mission_report",
    "mutating_actions",
    "planned_changes",
    "reopen_findings",
    "run_mission",
    "scan_detail",
    "terminal_outcomes",
]

# Read-only calls by name: everything else a kind declares among its APPLY_ACTIONS changes something.
READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Head")
# Terminal words of a change's fate, as the audit trail spells them (aegis.models.Outcome and Decision values, and
# the approval function's "abandoned").
REFUSED_DECISIONS = frozenset({"denied", "expired", "halted", "failed", "abandoned"})

AnswerAll = Literal["approve", "deny", "none"]


# -- what moto saw ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MotoCall:
    """One request moto's server received: `service` is the IAM prefix (`ec2`, `kms`, `states`...), `action` the
    API operation (`EnableEbsEncryptionByDefault`), `params` the decoded request (form fields, JSON body, or for a
    REST call its URI labels plus `_path`, `_query` and `_body`)."""

    service: str
    action: str
    params: Mapping[str, Any] = field(default_factory=dict)
    # The IAM action, where IAM names the operation otherwise (S3's PutPublicAccessBlock of a bucket is
    # s3:PutBucketPublicAccessBlock, S3 Control's of the account s3:PutAccountPublicAccessBlock).
    iam_action: str = ""
    # The access key id that signed the request ("" unsigned): moto's STS sessions (the executor's RemediationRole
    # session) are ASIA..., the functions' own credentials the stack's fake key.
    caller: str = ""

    @property
    def by_role_session(self) -> bool:
        return self.caller.startswith("ASIA")

    @property
    def name(self) -> str:
        """`service:Action`, the API operation."""
        return f"{self.service}:{self.action}"

    @property
    def permission(self) -> str:
        """`service:Action` as IAM and the catalogue's kinds spell it."""
        return f"{self.service}:{self.iam_action or self.action}"

    def mentions(self, text: str) -> bool:
        return text in json.dumps(self.params, default=str)


class HeldCall:
    """A request moto's server holds before answering it (see `MotoCallLog.hold`)."""

    def __init__(self, predicate: Callable[[MotoCall], bool], timeout: float) -> None:
        self.predicate = predicate
        self.timeout = timeout
        self.reached = threading.Event()
        self._released = threading.Event()
        self.call: MotoCall | None = None

    def release(self) -> None:
        self._released.set()

    def wait_reached(self, timeout: float = 60.0) -> MotoCall:
        assert self.reached.wait(timeout), "the held call never reached moto"
        assert self.call is not None
        return self.call

    def _hold(self, call: MotoCall) -> None:
        self.call = call
        self.reached.set()
        # A test that never releases must not hang the server thread (and the function) for ever.
        self._released.wait(self.timeout)


class MotoCallLog:
    """The AWS calls the stack's moto server saw since `start()`, from moto's own recorder.

    `hold(predicate)` also holds the first matching request in the server, before moto answers (or changes
    anything), until the test releases it: a function can be stopped inside one chosen AWS call."""

    _write_lock = threading.Lock()

    def __init__(self, moto_url: str) -> None:
        if not moto_url.startswith("http://127.0.0.1:"):
            raise ValueError(f"{moto_url} is not a loopback moto server")
        self._url = moto_url.rstrip("/")
        self._directory = tempfile.TemporaryDirectory(prefix="aegis-moto-calls-")
        self._path = Path(self._directory.name) / "recording.jsonl"
        self._recorder: Any = None
        self._original_write: Callable[..., None] | None = None
        self._holds: list[HeldCall] = []
        self._holds_lock = threading.Lock()

    @classmethod
    def of(cls, stack: Any) -> MotoCallLog:
        return cls(stack.endpoints.moto_url)

    def start(self) -> MotoCallLog:
        """Forget every call so far and record from now on."""
        self._install()
        self._post("reset-recording")
        self._post("start-recording")
        return self

    def stop(self) -> None:
        """Stop recording and give the recorder back its own file and writes."""
        if self._recorder is None:
            return
        self._post("stop-recording")
        self._recorder._location = self._saved_location
        if self._original_write is not None:
            del self._recorder._record_request
        self._recorder = self._original_write = None
        self._directory.cleanup()

    def __enter__(self) -> MotoCallLog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def calls(self) -> list[MotoCall]:
        """Every call recorded since `start()`, oldest first."""
        with MotoCallLog._write_lock:
            text = self._download()
        return [decode_recorded(json.loads(line)) for line in text.splitlines() if line.strip()]

    def count(self, action: str) -> int:
        """How many calls of `action`: `ec2:EnableEbsEncryptionByDefault`, or the bare operation name."""
        return sum(1 for call in self.calls() if _is_action(call, action))

    def of_action(self, action: str) -> list[MotoCall]:
        return [call for call in self.calls() if _is_action(call, action)]

    @contextmanager
    def hold(self, predicate: Callable[[MotoCall], bool], *, timeout: float = 60.0) -> Iterator[HeldCall]:
        """Hold the first request matching `predicate` in moto's server until `release()` (at the latest when the
        block ends, or after `timeout` seconds): the caller waits inside that AWS call, which has changed nothing."""
        self._install()
        held = HeldCall(predicate, timeout)
        with self._holds_lock:
            self._holds.append(held)
        try:
            yield held
        finally:
            with self._holds_lock:
                if held in self._holds:
                    self._holds.remove(held)
            held.release()

    def _held_for(self, request: Any) -> HeldCall | None:
        with self._holds_lock:
            if not self._holds:
                return None
        call = decode_recorded(_request_entry(request))
        with self._holds_lock:
            holds = list(self._holds)
        # Predicates run without the lock: one may make AWS calls of its own, which come through here too.
        for held in holds:
            if held.predicate(call):
                with self._holds_lock:
                    if held not in self._holds:
                        continue  # another request matched it first
                    self._holds.remove(held)
                held.call = call
                return held
        return None

    # -- internals ------------------------------------------------------------------------------------------------

    def _install(self) -> None:
        if self._recorder is not None:
            return
        from moto.moto_api import recorder

        self._recorder = recorder
        self._saved_location = recorder._location
        recorder._location = str(self._path)
        self._path.touch()
        self._original_write = type(recorder)._record_request
        original = self._original_write

        def serialised(request: Any, body: bytes | None = None) -> None:
            if str(getattr(request, "raw_path", "")).startswith("/moto-api/"):
                return  # the recorder's own endpoints (a download holds the lock) and moto's controls: no AWS call
            held = self._held_for(request)
            if held is not None:
                held._hold(held.call or decode_recorded(_request_entry(request)))
            with MotoCallLog._write_lock:
                original(recorder, request, body)

        recorder._record_request = serialised  # type: ignore[method-assign]

    def _post(self, endpoint: str) -> None:
        request = urllib.request.Request(f"{self._url}/moto-api/recorder/{endpoint}", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def _download(self) -> str:
        with urllib.request.urlopen(f"{self._url}/moto-api/recorder/download-recording", timeout=30) as answer:
            return str(answer.read().decode("utf-8"))


def _request_entry(request: Any) -> dict[str, Any]:
    """A request moto's server is handling, as the recorder writes it (its body read and put back)."""
    length = int(request.headers.get("Content-Length") or 0)
    body = request.environ["wsgi.input"].read(length) if length else b""
    request.environ["wsgi.input"] = io.BytesIO(body)
    return {
        "headers": dict(request.headers),
        "method": request.method,
        "url": request.raw_url,
        "body": base64.b64encode(body).decode("ascii"),
        "body_encoded": True,
    }


def _is_action(call: MotoCall, action: str) -> bool:
    if ":" in action:
        return action in (call.name, call.permission)
    return action in (call.action, call.iam_action)


_CREDENTIAL_SCOPE = re.compile(r"Credential=([^/]+)/\d{8}/[^/]+/([^/]+)/aws4_request")


def decode_recorded(entry: Mapping[str, Any]) -> MotoCall:
    """One line of moto's recording as a `MotoCall`."""
    headers = {str(k).lower(): str(v) for k, v in (entry.get("headers") or {}).items()}
    raw = entry.get("body") or ""
    body = base64.b64decode(raw) if entry.get("body_encoded") else str(raw).encode("utf-8")
    scope = _CREDENTIAL_SCOPE.search(headers.get("authorization", ""))
    service = scope.group(2) if scope else "unsigned"
    caller = scope.group(1) if scope else ""
    url = urlsplit(str(entry.get("url", "")))
    target = headers.get("x-amz-target")
    if target:
        params = _json_or_text(body)
        decoded = params if isinstance(params, dict) else {"_body": params}
        return MotoCall(service, target.rsplit(".", 1)[-1], decoded, caller=caller)
    form = parse_qs(body.decode("utf-8", errors="replace")) if b"Action=" in body else parse_qs(url.query)
    if "Action" in form:
        params = {key: values[0] if len(values) == 1 else values for key, values in form.items() if key != "Action"}
        action = form["Action"][0]
        if scope is None and action in _unsigned_sts_operations():
            service = "sts"  # AssumeRoleWithWebIdentity is called without AWS credentials
        return MotoCall(service, action, params, caller=caller)
    rest = _rest_call(service, str(entry.get("method", "GET")), url.path, url.query, body)
    return MotoCall(rest.service, rest.action, rest.params, rest.iam_action, caller)


def _json_or_text(body: bytes) -> Any:
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return text


@cache
def _unsigned_sts_operations() -> frozenset[str]:
    import botocore.session

    return frozenset(botocore.session.get_session().get_service_model("sts").operation_names)


# The public access block is one API name for two IAM actions: the bucket's (S3) and the account's (S3 Control).
_IAM_NAMES = {
    ("s3", "PutPublicAccessBlock"): "PutBucketPublicAccessBlock",
    ("s3", "GetPublicAccessBlock"): "GetBucketPublicAccessBlock",
    ("s3", "DeletePublicAccessBlock"): "PutBucketPublicAccessBlock",
    ("s3control", "PutPublicAccessBlock"): "PutAccountPublicAccessBlock",
    ("s3control", "GetPublicAccessBlock"): "GetAccountPublicAccessBlock",
    ("s3control", "DeletePublicAccessBlock"): "PutAccountPublicAccessBlock",
}


@dataclass(frozen=True)
class _RestOperation:
    model: str
    name: str
    method: str
    pattern: re.Pattern[str]
    query_keys: frozenset[str]
    literal_length: int
    labels: tuple[str, ...]


# Services whose requests are signed with another service's name (S3 Control signs as s3).
_SIGNED_AS = {"s3": ("s3", "s3control")}


@cache
def _rest_operations(service: str) -> tuple[_RestOperation, ...]:
    """The REST operations of every botocore service signed as `service`, most specific URI first."""
    import botocore.exceptions
    import botocore.session

    session = botocore.session.get_session()
    found: list[_RestOperation] = []
    for name in _SIGNED_AS.get(service, (service,)):
        try:
            model = session.get_service_model(name)
        except botocore.exceptions.UnknownServiceError:
            continue
        if model.protocol not in ("rest-json", "rest-xml"):
            continue
        for operation_name in model.operation_names:
            http = model.operation_model(operation_name).http
            path, _, query = str(http["requestUri"]).partition("?")
            regex = ""
            labels: list[str] = []
            for part in re.split(r"(\{[^}]+\})", path):
                if part.startswith("{") and part.endswith("}"):
                    label = part[1:-1]
                    greedy = label.endswith("+")
                    labels.append(label.rstrip("+"))
                    regex += f"(?P<l{len(labels) - 1}>{'.+' if greedy else '[^/]+'})"
                else:
                    regex += re.escape(part)
            keys = frozenset(key.split("=", 1)[0] for key in query.split("&") if key)
            literal = len(re.sub(r"\{[^}]+\}", "", path)) + 10 * len(keys)
            pattern = re.compile(f"^{regex}/?$")
            found.append(
                _RestOperation(name, operation_name, str(http["method"]), pattern, keys, literal, tuple(labels))
            )
    return tuple(sorted(found, key=lambda operation: -operation.literal_length))


def _rest_call(service: str, method: str, path: str, query: str, body: bytes) -> MotoCall:
    present = set(parse_qs(query, keep_blank_values=True))
    for operation in _rest_operations(service):
        if operation.method != method or not operation.query_keys <= present:
            continue
        matched = operation.pattern.match(path)
        if matched is None:
            continue
        params: dict[str, Any] = {label: unquote(matched.group(f"l{i}")) for i, label in enumerate(operation.labels)}
        params.update({"_path": path, "_query": query, "_body": body.decode("utf-8", errors="replace")})
        iam_action = _IAM_NAMES.get((operation.model, operation.name), "")
        return MotoCall(service, operation.name, params, iam_action)
    return MotoCall(service, f"{method} {path}", {"_query": query, "_body": body.decode("utf-8", errors="replace")})


# -- applied at most once -----------------------------------------------------------------------------------------


def mutating_actions(change: ChangeBase) -> tuple[str, ...]:
    """The kind's declared apply actions that change something (`ec2:EnableEbsEncryptionByDefault`)."""
    declared: Iterable[str] = getattr(type(change), "APPLY_ACTIONS", ())
    return tuple(a for a in declared if not a.split(":", 1)[1].startswith(READ_ONLY_PREFIXES))


def _resource_names(change: ChangeBase) -> set[str]:
    """How a call can name the change's resource: its ARN, and the id or name at the ARN's end."""
    arn = change.resource_arn
    names = {arn}
    tail = arn.split(":", 5)[5] if arn.count(":") >= 5 else arn
    for piece in (tail, tail.rsplit("/", 1)[-1], tail.split("/", 1)[-1]):
        if piece and piece != arn.split(":")[4] and len(piece) >= 3:
            names.add(piece)
    return names


def applied_counts(log: MotoCallLog, changes: Sequence[ChangeBase]) -> dict[str, int]:
    """Change id -> how many of its remediation's mutating calls reached moto for its resource.

    A call counts for a change when it is one of the change's mutating actions and names the change's resource (its
    ARN, id or name anywhere in the request). A call that names no resource of these changes (an account-wide
    setting: EBS default encryption, the password policy) counts for the one change with that action; were two
    changes to share such an action, the call could not be attributed and the count raises instead of guessing."""
    return count_applied(log.calls(), changes)


def count_applied(calls: Sequence[MotoCall], changes: Sequence[ChangeBase]) -> dict[str, int]:
    """`applied_counts` over the given calls (e.g. only those after the kill switch engaged its flag)."""
    names = {change.change_id: _resource_names(change) for change in changes}
    by_action: dict[str, list[ChangeBase]] = {}
    for change in changes:
        for action in mutating_actions(change):
            by_action.setdefault(action, []).append(change)
    counts: Counter[str] = Counter({change.change_id: 0 for change in changes})
    for call in calls:
        candidates = by_action.get(call.permission, [])
        if not candidates:
            continue
        naming = [c for c in candidates if any(call.mentions(name) for name in names[c.change_id])]
        if naming:
            for change in naming:
                counts[change.change_id] += 1
        elif not any(call.mentions(name) for c in changes for name in names[c.change_id]):
            if len(candidates) > 1:
                raise AssertionError(f"{call.name} names no resource and {len(candidates)} changes declare it")
            counts[candidates[0].change_id] += 1
    return dict(counts)


def engages_halt_flag(call: MotoCall) -> bool:
    """The kill switch's write that engages the halt flag (aegis_killswitch.halt.engage: the Control table's
    `halt` item, `SET engaged = :engaged`)."""
    key = call.params.get("Key") or {}
    return (
        call.name == "dynamodb:UpdateItem"
        and isinstance(key, dict)
        and key.get("name") == {"S": "halt"}
        and str(call.params.get("UpdateExpression", "")).startswith("SET engaged = :engaged")
    )


def calls_after_halt(log: MotoCallLog) -> list[MotoCall]:
    """The calls moto received after the halt flag was engaged (fails when it never was)."""
    calls = log.calls()
    flag = next((index for index, call in enumerate(calls) if engages_halt_flag(call)), None)
    assert flag is not None, "the halt flag was never engaged"
    return calls[flag + 1 :]


def assert_applied_at_most_once(log: MotoCallLog, changes: Sequence[ChangeBase]) -> dict[str, int]:
    """Fails naming every change whose mutating calls reached moto more than once; returns the counts."""
    counts = applied_counts(log, changes)
    twice = {change_id: count for change_id, count in counts.items() if count > 1}
    assert not twice, f"applied more than once (change id -> mutating calls moto saw): {twice}"
    return counts


# -- a whole mission ----------------------------------------------------------------------------------------------

# Three findings of the seeded account whose fixes are one AWS call each, each a request of its own when batches are
# off: the checks fault tests scan for. `reopen_findings` makes them fail again after a mission fixed them.
FAULT_CHECKS = ("ec2-ebs-default-encryption-off", "iam-password-policy-weak", "kms-key-rotation-off")


def fault_stack(*, ciba_interval_seconds: int = 1, **parameters: str) -> Any:
    """A LocalStack (not started) for fault tests: one-second CIBA polls, no batches (one request per change) unless
    `parameters` say otherwise."""
    from aegis_local.auth0 import EmulatorConfig
    from aegis_local.aws.stack import LocalStack

    config = EmulatorConfig.default().model_copy(update={"ciba_interval_seconds": ciba_interval_seconds})
    return LocalStack(emulator_config=config, parameters={"ApprovalBatchMaxRisk": "none", **parameters})


def scan_detail(stack: Any, checks: Sequence[str] = FAULT_CHECKS) -> dict[str, Any]:
    return {"regions": [stack.identity.region], "checks": list(checks), "dry_run": False}


def reopen_findings(stack: Any, seeded: Any) -> None:
    """Put the FAULT_CHECKS findings back as the seed made them (a test before may have fixed them)."""
    stack.client("ec2").disable_ebs_encryption_by_default()
    stack.client("kms").disable_key_rotation(KeyId=seeded.kms_keys["no-rotation"])
    stack.client("iam").update_account_password_policy(
        MinimumPasswordLength=8, PasswordReusePrevention=5, RequireSymbols=True
    )


class ProgressLog:
    """The driver's progress lines, kept for assertion messages."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()

    def step(self, label: str, text: str) -> None:
        with self._lock:
            self._lines.append(f"{label:<8} {text}")

    def lines(self, lines: Iterable[str]) -> None:
        with self._lock:
            self._lines.extend(lines)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self._lines)


def run_mission(
    stack: Any,
    detail: Mapping[str, Any],
    *,
    answer: AnswerAll = "approve",
    timeout: float = 120.0,
    policy: ApprovalPolicy | None = None,
    kill_after: int | None = None,
    progress: ProgressLog | None = None,
) -> MissionRun:
    """Fire `detail` as a scan event and drive the mission to its end (or `timeout` seconds).

    `answer`: "approve" or "deny" every request on every approver's phone; "none" leaves the phones alone (the test
    answers, or the requests expire). `policy` overrides `answer` with the demo's finer ApprovalPolicy. The run's
    `problems` say why a mission did not end; `run.ended` is True when it did."""
    approvers = [sub for sub in str(stack.parameters.get("ApproverSubs", "")).split(",") if sub]
    phone = None
    if answer != "none" or policy is not None:
        phone = EmulatedPhone(stack.emulator, approvers[0], also=approvers[1:])
    chosen = policy if policy is not None else ApprovalPolicy(approve_all=answer == "approve")
    options = DriveOptions(policy=chosen, kill_after=kill_after, timeout_seconds=timeout)
    return MissionDriver(stack, progress or ProgressLog(), options, phone, approvers[0]).run(dict(detail))


def fix_one_check(stack: Any, check: str, *, timeout: float = 120.0) -> tuple[MissionRun, ProgressLog]:
    """A mission over one check, every request approved, driven to its end (asserted): the run and its progress."""
    progress = ProgressLog()
    run = run_mission(stack, scan_detail(stack, [check]), timeout=timeout, progress=progress)
    assert run.ended, f"{run.problems}\n{progress.text()}"
    return run, progress


def planned_changes(stack: Any, mission_id: str) -> list[ChangeBase]:
    """The mission's plan from the agent's checkpoint, for a mission that started no execution (the driver reads the
    plan from the execution's ValidatePlan output)."""
    from aegis_agent.graph import load_plan
    from aegis_agent.missions import MissionStore
    from aegis_local.reporting.mission_report import _checkpoint_values

    resource = stack.session().resource("dynamodb")
    values = _checkpoint_values(resource.Table(stack.physical_id("CheckpointsTable")), mission_id)
    if not values or "plan" not in values:
        return []
    return list(load_plan(values, MissionStore(resource.Table(stack.physical_id("MissionsTable")))).changes)


def audit_table(stack: Any) -> Any:
    return stack.session().resource("dynamodb").Table(stack.physical_id("AuditTable"))


class AuditRecord(NamedTuple):
    actor: str
    outcome: str
    details: dict[str, Any]


def records_of(stack: Any, mission_id: str, action: str) -> list[AuditRecord]:
    """Every record of `action` in the mission's trail, in trail order."""
    return [
        AuditRecord(str(item["actor"]), str(item["outcome"]), audit_details(item))
        for item in read_trail(audit_table(stack), mission_id)
        if item["action"] == action
    ]


def change_results(stack: Any, mission_id: str, change_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Change id -> the agent's `change.result` record (its details, with its `outcome`), once the audit chain
    verifies. The agent writes one per change when it resumes, whatever ended the change: an executor result, a
    refused approval, a named executor error or a function that died (the last two leave no `executor.result` of
    their own). Exactly `change_ids` must have one."""
    assert stack.drain_streams(15), "the audit chainer did not catch up"
    ended = {
        str(record.details.get("change_id")): {**record.details, "outcome": record.outcome}
        for record in records_of(stack, mission_id, "change.result")
        if record.actor == "agent"
    }
    assert sorted(ended) == sorted(change_ids), f"change.result records: {ended}"
    missions = stack.session().resource("dynamodb").Table(stack.physical_id("MissionsTable"))
    verdict = verify_mission(audit_table(stack), missions, mission_id)
    assert verdict.intact, verdict.summary()
    assert verdict.linked > 0, verdict.summary()
    return ended


def mission_report(stack: Any, mission_id: str, *, halted: bool | None = None) -> MissionReportDocument:
    """The mission's report as `aegis-local` assembles it (the agent's own report when it resumed). `halted`
    defaults to what the trail says: the kill switch (or the agent) recorded `mission.halted`."""
    import boto3

    stack.drain_streams()
    if halted is None:
        halted = any(item.get("action") == "mission.halted" for item in read_trail(audit_table(stack), mission_id))
    resource = stack.session().resource("dynamodb")
    sources = MissionSources(
        missions=resource.Table(stack.physical_id("MissionsTable")),
        audit=resource.Table(stack.physical_id("AuditTable")),
        checkpoints=resource.Table(stack.physical_id("CheckpointsTable")),
        session_factory=boto3.Session,
    )
    return assemble_report(sources, mission_id, halted=halted)


# -- the trail ----------------------------------------------------------------------------------------------------


def terminal_outcomes(stack: Any, mission_id: str) -> dict[str, str]:
    """Change id -> the terminal word the trail records for it: the executor's outcome when it ran, else the
    refused decision (denied, expired, halted, failed, abandoned), else "halted" when a `mission.halted` (the
    kill switch) or `mission.ended` record (an execution that ended without resuming the agent) covers a change the
    mission never finished. A change missing here has no terminal record."""
    trail = sorted(read_trail(audit_table(stack), mission_id), key=lambda item: str(item.get("seq", "")))
    facts = change_facts(trail)
    # The kill switch's halt, or its record that the execution ended without resuming the agent.
    halted = any(item.get("action") in ("mission.halted", "mission.ended") for item in trail)
    dry_run = any(item.get("action") == "mission.completed" and item.get("outcome") == "dry_run" for item in trail)
    found: dict[str, str] = {}
    for change_id, fact in facts.items():
        if fact.executor_outcome is not None:
            found[change_id] = fact.executor_outcome
        elif fact.decision in REFUSED_DECISIONS:
            found[change_id] = str(fact.decision)
        elif "approval.abandoned" in fact.events:
            found[change_id] = "abandoned"
        elif halted:
            found[change_id] = "halted"
    if halted or dry_run:
        # Changes the mission never asked about: the halt (or the dry run) is their end.
        found.setdefault("*", "halted" if halted else "dry_run")
    return found


def assert_trail_complete(stack: Any, mission_id: str, change_ids: Iterable[str]) -> dict[str, str]:
    """Every change has its terminal audit record, and the mission's audit chain verifies once the chainer caught
    up. Returns change id -> terminal word (see `terminal_outcomes`)."""
    assert stack.drain_streams(15), "the audit chainer did not catch up"
    outcomes = terminal_outcomes(stack, mission_id)
    wanted = list(change_ids)
    missing = [change_id for change_id in wanted if change_id not in outcomes and "*" not in outcomes]
    assert not missing, f"no terminal audit record for {missing} (recorded: {outcomes})"
    missions = stack.session().resource("dynamodb").Table(stack.physical_id("MissionsTable"))
    verdict = verify_mission(audit_table(stack), missions, mission_id)
    assert verdict.intact, verdict.summary()
    assert verdict.linked > 0, verdict.summary()
    return {change_id: outcomes.get(change_id, outcomes.get("*", "")) for change_id in wanted}


# -- the leak audit -----------------------------------------------------------------------------------------------


def assert_no_leak(stack: Any, extra_secrets: Iterable[str] = (), files: Iterable[Path] = ()) -> LeakAuditResult:
    """The leak audit over every table, execution and queue of the stack (and `files`), for every secret the
    emulator issued (client secrets, passwords, tokens), every STS credential and `extra_secrets`: clean."""
    secrets = [*stack.emulator.issued_secrets(), *stack.issued_aws_credentials(), *extra_secrets]
    result = audit_stack(stack.session(), secrets, files)
    assert result.values_searched > 0
    assert result.hits == [], f"secrets found: {[hit.place for hit in result.hits]}"
    return result
