"""Segments: conditions over contacts, previewed, kept as membership, and watched for changes."""
