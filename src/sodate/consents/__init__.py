"""Consent per channel and purpose, with the proof of each grant and withdrawal."""
