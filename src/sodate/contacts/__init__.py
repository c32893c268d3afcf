"""Contacts: unified profiles, their identities, merges and companies."""
