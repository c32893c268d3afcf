"""The condition language: one model, compiled to SQL or evaluated in memory."""
