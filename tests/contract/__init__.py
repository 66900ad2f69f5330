"""Tests of the contract between the packages (sizing.contract) and of the bounded parsers (sizing.bounded)."""
