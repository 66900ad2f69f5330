"""Kubernetes plumbing shared by the extender, the webhook, the device plugin and the partitioner,
no project logic: paged list and watch (``list_watch``), one list/watch loop shared by subscribers
(``informer``), the retry backoff (``backoff``), the client's configuration (``client``) and the
bounded non-blocking file reader (``regular_file``).

It imports nothing of the project but ``sizing`` (import-linter, pyproject.toml), and importing the
package itself loads nothing: the kubernetes client is imported only by the modules that call it.
"""
