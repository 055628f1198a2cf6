"""Documented import paths kept for existing callers."""
