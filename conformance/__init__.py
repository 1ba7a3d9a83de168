"""Conformance suites: the runner (``hisgw conformance``), the executors and the suites as data
(``suites/``); docs/conformance.md."""
