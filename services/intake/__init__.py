"""Intake: identification and initial reporting of incidents, and the registry of their state."""
