"""Least privilege, checked by the API server's own authorizer: ``kubectl auth can-i --as=<subject>``
for what a component needs (must be yes) and for broad rights (must be no)."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tests.controlplane.harness import ControlPlane

# kubectl calls in flight at once: each is a short SelfSubjectAccessReview; 4 keeps two cores busy
# without starving the control plane.
PARALLEL_CHECKS = 4


@dataclass(frozen=True)
class Access:
    """One question: may the subject ``verb`` ``resource`` (``resource.group`` for non-core
    groups, ``*`` for all) in ``namespace`` (None: cluster-wide / all namespaces)?"""

    verb: str
    resource: str
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None

    def argv(self) -> list[str]:
        target = f"{self.resource}/{self.name}" if self.name else self.resource
        args = ["auth", "can-i", self.verb, target]
        if self.subresource:
            args.append(f"--subresource={self.subresource}")
        args += [f"--namespace={self.namespace}"] if self.namespace else ["--all-namespaces"]
        return args

    def __str__(self) -> str:
        where = f"in {self.namespace}" if self.namespace else "cluster-wide"
        sub = f"/{self.subresource}" if self.subresource else ""
        named = f" {self.name!r}" if self.name else ""
        return f"{self.verb} {self.resource}{sub}{named} {where}"


def service_account(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def can_i(plane: ControlPlane, subject: str, access: Access) -> bool:
    """The API server's answer (exit 0 = yes, 1 = no; anything else raises)."""
    result = plane.kubectl(*access.argv(), f"--as={subject}", check=False)
    answer = result.stdout.strip()
    if result.returncode not in (0, 1) or answer not in ("yes", "no"):
        raise AssertionError(f"kubectl auth can-i {access} --as={subject} failed: {result.stderr.strip()}")
    return answer == "yes"


def broad_denials(own_namespace: str, other_namespace: str) -> tuple[Access, ...]:
    """Rights no component of this project needs: secrets anywhere, everything, exec into or
    delete other namespaces' pods, deleting nodes, changing RBAC."""
    return (
        Access("get", "secrets"),
        Access("list", "secrets"),
        Access("get", "secrets", namespace=own_namespace),
        Access("list", "secrets", namespace="kube-system"),
        Access("*", "*"),
        Access("*", "*", namespace=own_namespace),
        Access("create", "pods", namespace=other_namespace, subresource="exec"),
        Access("get", "pods", namespace=other_namespace, subresource="exec"),
        Access("delete", "pods", namespace=other_namespace, subresource="eviction"),
        Access("delete", "nodes"),
        Access("create", "nodes"),
        Access("update", "clusterroles.rbac.authorization.k8s.io"),
        Access("create", "rolebindings.rbac.authorization.k8s.io", namespace=own_namespace),
        Access("impersonate", "serviceaccounts"),
        Access("create", "serviceaccounts", namespace=own_namespace, subresource="token"),
    )


def assert_least_privilege(plane: ControlPlane, subject: str, *, allowed: Iterable[Access],
                           denied: Iterable[Access]) -> None:
    """Every ``allowed`` is yes and every ``denied`` is no; one failure lists every mismatch."""
    questions = [(a, True) for a in allowed] + [(d, False) for d in denied]
    with ThreadPoolExecutor(PARALLEL_CHECKS) as pool:
        answers = list(pool.map(lambda q: can_i(plane, subject, q[0]), questions))
    wrong = [f"{'missing' if want else 'too broad'}: {access}"
             for (access, want), got in zip(questions, answers, strict=True) if got != want]
    assert not wrong, f"{subject}:\n  " + "\n  ".join(wrong)
