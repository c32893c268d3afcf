"""Lead scoring: fit and engagement points by model, decay, thresholds and their crossings."""
