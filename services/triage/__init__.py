"""Triage: classification and prioritisation of incidents (roles and containment come later)."""
