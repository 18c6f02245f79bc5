"""Notify: internal and external communication about incidents, escalating by severity."""
