"""Tests of the sizing library."""
