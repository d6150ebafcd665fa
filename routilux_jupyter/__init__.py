"""Jupyter side of routilux: notebook magics and a live dashboard."""
