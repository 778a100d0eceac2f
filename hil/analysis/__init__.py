"""Fits that turn recorded sweeps into calibrated numbers with uncertainties."""
