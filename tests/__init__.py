"""The test suite: one package per part of the project (tests.sizing, tests.extender, ...)."""
