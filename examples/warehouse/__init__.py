"""Demo warehouse for kube-etl: jobs that load public weather and stock data into a star schema.

The jobs in ``warehouse.jobs`` read CSV files shipped in the ``vega_datasets`` package, stage
them, build a date dimension, load facts keyed to it and summarise them. They are run by
``etl-runtime run`` (in a pod, or with ``--local``), with ``examples/`` on PYTHONPATH and a
config.ini whose ``[warehouse]`` section names the target database.
"""
