"""One small, runnable task module per group of the ETLTask API; docs/runtime.md walks through them.

Each module runs with ``etl-runtime run --local seed_api.<module>.<Class>`` when ``examples/`` is
on PYTHONPATH, and tests/runtime/test_seed_api_examples.py runs each one the way the page shows.
"""
