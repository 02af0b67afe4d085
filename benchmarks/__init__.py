"""Benchmarks of kube-etl on the local control plane; `python -m benchmarks --help` lists them.

`docs/benchmarks.md` records the figures, the commands that produced them and the machine.
"""
