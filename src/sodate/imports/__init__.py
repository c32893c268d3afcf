"""Imports and exports: contacts and events from CSV files, contacts to CSV and JSONL."""
