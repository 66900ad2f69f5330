"""Tests of the kube-scheduler extender and the placement planner."""
