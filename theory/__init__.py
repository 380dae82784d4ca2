"""Executable theory for ssmred: sympy proofs and numeric campaigns (see theory/README.md).

Every ``test_*.py`` module is collected by pytest and also runs standalone, e.g.
``python -m theory.test_weyl``; ``python -m theory.campaign`` runs the numeric campaign.
Requires the ``theory`` extra (sympy).
"""
