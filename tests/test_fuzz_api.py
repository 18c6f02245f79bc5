"""schemathesis against the live OpenAPI document of the shared platform (SQLite): every
operation, called with generated input (valid and invalid) by an admin, a manager, a responder
and a client's key, never answers 5xx and answers as its schema documents.

The fuzz works on a client of its own (tests/populated_client.py): a generated path parameter
is at times replaced by one of that client's ids, so that calls reach real objects and not only
404s. What it deletes, revokes or deactivates is therefore the fuzz client's alone: the pool
holds a contact's key and person, never a fuzzing principal's own (revoking those would leave
the fuzz nothing but 401s), and the shared platform's own objects (the bootstrap key, schedule
`default`, the shipped escalation policies, the operator client) are never called.

`make test` runs a few examples per operation; FIREBREAK_FUZZ_EXAMPLES (`make fuzz`) sets more.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from firebreak.launcher import Platform
from tests.conftest import on_backend
from tests.gateway_client import Api
from tests.populated_client import populated_client

EXAMPLES = int(os.environ.get("FIREBREAK_FUZZ_EXAMPLES", "5"))
# Headers the calls set themselves: the caller's key, and the length of the body sent.
OWN_HEADERS = {"authorization", "content-length"}
# The shared platform's own objects, which later tests rely on: the firm's default schedule,
# the shipped escalation policies, the bootstrap key, the operator client. A generated path
# naming one of them is not sent.
SHARED_IDS = {"default", "default-p1-p2", "default-p3-p4", "bootstrap", "operator"}


@dataclass(frozen=True)
class Fuzzers:
    keys: dict[str, dict[str, str]]  # role -> its Authorization header
    ids: dict[str, str]  # a path parameter's name -> the fuzz client's object of that kind


@pytest.fixture(scope="module")
def fuzzers(api: Api) -> Fuzzers:
    own = populated_client(api, "Fuzz")
    keys = {
        "admin": api.new_person("admin").headers,
        "manager": own.manager.headers,
        "responder": own.responder.headers,
        "client": own.system.headers,
    }
    return Fuzzers(keys=keys, ids=own.ids | {"key_id": own.contact.key_id})


@pytest.fixture(scope="module")
def live_schema(platform: Platform) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{platform.gateway_url}/openapi.json")


def fuzz(operation: schemathesis.APIOperation, fuzzers: Fuzzers) -> None:
    """Runs the operation's examples, valid and invalid; raises on the first failed check."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=st.one_of(*(operation.as_strategy(mode) for mode in schemathesis.GenerationMode)),
        data=st.data(),
    )
    def examples(case: schemathesis.Case, data: st.DataObject) -> None:
        for name in OWN_HEADERS:
            case.headers.pop(name, None)
        role = data.draw(st.sampled_from(sorted(fuzzers.keys)), label="role")
        for name in case.path_parameters or {}:
            if name in fuzzers.ids and data.draw(st.booleans(), label=f"real {name}"):
                case.path_parameters[name] = fuzzers.ids[name]
        if SHARED_IDS & set(map(str, (case.path_parameters or {}).values())):
            reject()
        case.call_and_validate(
            headers=fuzzers.keys[role],
            checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
        )

    examples()


def described(failure: BaseException) -> str:
    """The failure, its notes (schemathesis adds the call that reproduces it) and, for a
    group, each failure in it."""
    parts = [str(failure), *getattr(failure, "__notes__", [])]
    if isinstance(failure, BaseExceptionGroup):
        parts += [described(inner) for inner in failure.exceptions]
    return "\n".join(parts)


# The schema comes from the running platform, so the operations are known only at run time:
# one test runs them all and reports each that failed.
@on_backend("sqlite", "platform")
def test_no_server_error_and_every_response_as_documented(
    live_schema: schemathesis.BaseSchema, fuzzers: Fuzzers
) -> None:
    failures: dict[str, str] = {}
    results = list(live_schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) > 90  # and each operation's definition is valid
    for operation in operations:
        try:
            fuzz(operation, fuzzers)
        # schemathesis raises a group of the distinct failures it found: each is reported.
        except (Exception, BaseExceptionGroup) as failure:
            failures[operation.label] = described(failure)
    assert not failures, "\n\n".join(f"{label}: {text}" for label, text in failures.items())
