"""Code generated from protos/ at build time (see setup.py); only this file is in git."""
