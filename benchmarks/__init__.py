"""Rerunnable timings (not tests): `make bench-regions`. Each runs in a throwaway database."""
