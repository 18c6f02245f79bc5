"""Evidence: collection, labelling, chain of custody and integrity of incident evidence."""
