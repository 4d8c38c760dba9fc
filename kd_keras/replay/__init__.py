"""The papers' experiments, replayed into run folders: the teacher, the students, the chains, Paper A.

Built on the library (:mod:`kd_keras`) and imported by the command line; nothing in the library
imports it.
"""
