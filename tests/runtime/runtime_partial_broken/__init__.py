"""A base module with one module that cannot be imported, for the partial-name error tests."""
