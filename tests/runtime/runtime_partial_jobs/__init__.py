"""Task classes for the partial-name tests, in modules whose names share prefixes on purpose.

The tests use this package as a base module, so it is imported by its bare name,
``runtime_partial_jobs``, as a job package in an image is.
"""
