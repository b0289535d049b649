"""Scripted expert for dish_rack (placeholder)."""
from __future__ import annotations
