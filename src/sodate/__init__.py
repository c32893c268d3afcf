"""Sodate (育て): customer nurturing and marketing automation."""

__version__ = "0.1.0"
