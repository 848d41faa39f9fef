"""Deployment helpers that run from a source checkout (not part of the installed package).

A package (rather than loose scripts) so ``python -m deploy.local_cluster`` and the tests in
``tests/deploy`` import the same code the shell wrappers run.
"""
