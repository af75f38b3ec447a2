"""The pipeline stages as plain functions: extract, validate, transform, load."""
