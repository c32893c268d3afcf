"""Events: the Segment-compatible tracking API, the event log and the processing pipeline."""
