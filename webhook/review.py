"""``admission.k8s.io/v1`` AdmissionReview in, AdmissionReview out. Pure.

The response echoes ``apiVersion``, ``kind`` and ``request.uid``; a mutation is
``patchType: JSONPatch`` with the patch base64-encoded; a denial is ``allowed: false`` with a
``status`` (code 400 and the message). A body that is not an AdmissionReview with a uid cannot be
answered in kind: it gets HTTP 400 with a one-line error, never a 500.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

import orjson

from decision.fits import Offer
from webhook.dra import is_claim_template, mutate_claim_template
from webhook.mutation import Mutation, Options, mutate
from webhook.workload import KSERVE_GROUP, Kind

API_VERSIONS: Final = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")

# Largest body read. The API server stores objects of at most 1.5 MiB (etcd's request limit), and
# a review carries the object and, on UPDATE, the old object: 8 MiB is above any real review.
MAX_BODY_BYTES: Final = 8 << 20
MAX_UID_LENGTH: Final = 128  # a uid is a 36-character UUID; anything much longer is not one

# The API server may truncate a warning longer than 256 characters and ignores warnings past 4 KiB
# in total (Kubernetes "Admission webhook warnings" guidance); keep within both.
MAX_WARNING_LENGTH: Final = 256
MAX_WARNINGS: Final = 12

KINDS: Final = {("", "Pod"): Kind.POD, (KSERVE_GROUP, "InferenceService"): Kind.INFERENCE_SERVICE}
KSERVE_VERSION: Final = "v1beta1"  # the InferenceService version whose layout the webhook knows


class Result(str, Enum):
    """How a review ended, for the metrics and logs."""

    PATCHED = "patched"
    UNCHANGED = "unchanged"
    DENIED = "denied"
    IGNORED = "ignored"  # not a kind or operation the webhook mutates
    BAD_REQUEST = "bad_request"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    result: Result
    warnings: int = 0


def _bad(message: str) -> Reply:
    return Reply(400, orjson.dumps({"error": message}), Result.BAD_REQUEST)


def refused_body(message: str) -> Reply:
    """HTTP 413 for a body over MAX_BODY_BYTES, refused before it was read."""
    return Reply(413, orjson.dumps({"error": message}), Result.BAD_REQUEST)


def _clip(text: str) -> str:
    text = " ".join(text.split())  # one line: warnings travel in an HTTP header
    return text if len(text) <= MAX_WARNING_LENGTH else text[: MAX_WARNING_LENGTH - 1] + "…"


def _answer(api_version: str, uid: str, mutation: Mutation, result: Result) -> Reply:
    response: dict[str, Any] = {"uid": uid, "allowed": mutation.allowed}
    if not mutation.allowed:
        response["status"] = {"code": 400, "status": "Failure", "reason": "BadRequest", "message": mutation.message}
    if mutation.ops:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(orjson.dumps(list(mutation.ops))).decode("ascii")
    warnings = [_clip(w) for w in mutation.warnings[:MAX_WARNINGS]]
    if warnings:
        response["warnings"] = warnings
    body = orjson.dumps({"apiVersion": api_version, "kind": "AdmissionReview", "response": response})
    return Reply(200, body, result, len(warnings))


def _kind(request: Mapping[str, Any]) -> Kind | None:
    kind = request.get("kind")
    if not isinstance(kind, Mapping):
        return None
    found = KINDS.get((str(kind.get("group")), str(kind.get("kind"))))
    if found is Kind.INFERENCE_SERVICE and kind.get("version") != KSERVE_VERSION:
        return None
    if found is Kind.POD and kind.get("version") != "v1":
        return None
    return found


def review(body: bytes, offers: Callable[[], Sequence[Offer]], options: Options) -> Reply:
    """Answer one AdmissionReview body."""
    if len(body) > MAX_BODY_BYTES:
        return _bad(f"body is larger than {MAX_BODY_BYTES} bytes")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        return _bad(f"body is not JSON: {error}")
    if not isinstance(document, dict) or document.get("kind") != "AdmissionReview":
        return _bad("body is not an AdmissionReview")
    api_version = document.get("apiVersion")
    if api_version not in API_VERSIONS:
        return _bad(f"apiVersion must be one of {', '.join(API_VERSIONS)}")
    request = document.get("request")
    if not isinstance(request, dict):
        return _bad("AdmissionReview has no request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not 0 < len(uid) <= MAX_UID_LENGTH:
        return _bad(f"request.uid must be a string of 1 to {MAX_UID_LENGTH} characters")
    if is_claim_template(request.get("kind")):  # DRA mode (webhook/dra.py)
        claim = request.get("object")
        if request.get("operation") != "CREATE" or not isinstance(claim, dict):
            return _answer(api_version, uid, Mutation(True), Result.IGNORED)
        mutation = mutate_claim_template("CREATE", claim, offers(), options)
        result = Result.DENIED if not mutation.allowed else Result.PATCHED if mutation.ops else Result.UNCHANGED
        return _answer(api_version, uid, mutation, result)
    kind = _kind(request)
    operation = request.get("operation")
    if kind is None or operation not in ("CREATE", "UPDATE"):
        return _answer(api_version, uid, Mutation(True), Result.IGNORED)
    obj = request.get("object")
    if not isinstance(obj, dict):
        return _answer(api_version, uid, Mutation(False, message="request.object is not an object"), Result.DENIED)
    mutation = mutate(kind, operation, obj, offers(), options)
    result = Result.DENIED if not mutation.allowed else Result.PATCHED if mutation.ops else Result.UNCHANGED
    return _answer(api_version, uid, mutation, result)
